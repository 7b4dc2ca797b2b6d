"""Recursive gated convolution (HorNet's gnConv): high-order interactions by repeated gating.

A 1×1 projection gives a first feature of width ``C/2^(n-1)`` and gates of widths
``C/2^(n-1), …, C/2, C``; one 7×7 depthwise conv runs over all gates at once, and the feature
is multiplied by the first gate, widened by a 1×1 conv, multiplied by the next, and so on, for
order ``n``; a final 1×1 conv mixes the channels.
"""

from __future__ import annotations

import torch
from torch import nn

from hilobench.attention.base import Attention
from hilobench.attention.registry import register_attention
from hilobench.core.errors import ConfigError

#: The single-layer benchmark's setting at the 1/16 stage: order 4, gates scaled by 1/3.
ORDER = 4
SCALE = 1.0 / 3.0
KERNEL = 7


def gate_widths(dim: int, order: int) -> list[int]:
    """Channel widths of the recursion, narrowest first: ``[C/2^(n-1), …, C/2, C]``."""
    return [dim // 2**i for i in reversed(range(order))]


@register_attention("hornet", "recursive gated convolution, gnConv (HorNet)")
class GatedConvAttention(Attention):
    """gnConv of order ``order``: ``proj_in: C→2C``, a 7×7 depthwise conv (with bias) on the
    gates, ``order-1`` 1×1 convs between the gating steps, ``proj_out: C→C``.

    ``dim`` must be divisible by ``2^(order-1)``. Every conv keeps the map size, so any token
    map works without padding. ``num_heads`` is accepted for the common contract and otherwise
    unused.

    There is no softmax attention for ``scaled_dot_product_attention`` to carry: ``fused``
    runs the reference computation (``fused_is_reference``), so the two timings are the same
    code.
    """

    #: ``impl="fused"`` runs exactly the reference path (there is nothing to fuse).
    fused_is_reference: bool = True

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        impl: str = "reference",
        order: int = ORDER,
        scale: float = SCALE,
    ) -> None:
        super().__init__(dim, num_heads, qkv_bias, impl)
        if isinstance(order, bool) or not isinstance(order, int) or order < 1:
            raise ConfigError(f"gnConv order must be a positive integer, got {order!r}")
        if dim % 2 ** (order - 1):
            raise ConfigError(f"gnConv of order {order} needs dim divisible by {2 ** (order - 1)}")
        self.order = order
        self.gate_scale = float(scale)
        self.widths = gate_widths(dim, order)
        gates = sum(self.widths)
        self.proj_in = nn.Conv2d(dim, self.widths[0] + gates, 1)
        self.dwconv = nn.Conv2d(gates, gates, KERNEL, padding=KERNEL // 2, groups=gates)
        self.pws = nn.ModuleList(
            nn.Conv2d(a, b, 1) for a, b in zip(self.widths[:-1], self.widths[1:], strict=True)
        )
        self.proj_out = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        B, N, C = x.shape
        m = self.proj_in(x.transpose(1, 2).reshape(B, C, H, W))
        feat, gates = m.split((self.widths[0], sum(self.widths)), dim=1)
        g = (self.dwconv(gates) * self.gate_scale).split(self.widths, dim=1)
        y = feat * g[0]
        for pw, gate in zip(self.pws, g[1:], strict=True):
            y = pw(y) * gate
        return self.proj_out(y).flatten(2).transpose(1, 2)

    def score_elements(self, H: int, W: int) -> int:
        """No attention matrix: the gates are activations the size of the input or less."""
        return 0

    def macs(self, H: int, W: int) -> int:
        """1×1 convs ``N·C·2C + N·C² + N·Σ w_i·w_(i+1)`` plus the depthwise ``N·Σw·7²``.

        The gating products (``N·Σw``), the gate scaling and biases are not counted: fvcore
        has no handle for elementwise ops, and this gives the published 436.51M at dim 768,
        order 4, 14×14 (436.79M with each gating product charged one MAC per element).
        """
        n, c, w = H * W, self.dim, self.widths
        pointwise = (
            c * (w[0] + sum(w)) + c * c + sum(a * b for a, b in zip(w[:-1], w[1:], strict=True))
        )
        return n * (pointwise + sum(w) * KERNEL * KERNEL)

    def gating_macs(self, H: int, W: int) -> int:
        """The elementwise gating products fvcore skips: one multiply per gate element."""
        return H * W * sum(self.widths)
