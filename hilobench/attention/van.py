"""Large-kernel attention (VAN): a multiplicative gate from a decomposed large depthwise conv.

No token-to-token scores: the "attention map" is a per-pixel, per-channel gate computed by a
5×5 depthwise conv, a 7×7 depthwise conv with dilation 3 (together a 21×21 receptive field)
and a 1×1 conv, multiplied into its own input.
"""

from __future__ import annotations

import torch
from torch import nn

from hilobench.attention.base import Attention
from hilobench.attention.registry import register_attention

#: Depthwise local conv (kernel, padding) and dilated depthwise conv (kernel, padding, dilation).
LOCAL_KERNEL, LOCAL_PAD = 5, 2
DILATED_KERNEL, DILATED_PAD, DILATION = 7, 9, 3


@register_attention("van", "large-kernel attention: depthwise conv gating (VAN)")
class LargeKernelAttention(Attention):
    """VAN's attention block: ``1×1 → GELU → u·LKA(u) → 1×1``, plus the input as a shortcut.

    ``LKA(u) = 1×1(dw7×7,dil3(dw5×5(u)))``; every conv keeps the map size ("same" padding),
    so any token map works without padding. ``num_heads`` is accepted for the common contract
    and otherwise unused.

    There is no softmax attention for ``scaled_dot_product_attention`` to carry: ``fused``
    runs the reference computation (``fused_is_reference``), so the two timings are the same
    code.
    """

    #: ``impl="fused"`` runs exactly the reference path (there is nothing to fuse).
    fused_is_reference: bool = True

    def __init__(
        self, dim: int, num_heads: int, qkv_bias: bool = True, impl: str = "reference"
    ) -> None:
        super().__init__(dim, num_heads, qkv_bias, impl)
        self.proj_1 = nn.Conv2d(dim, dim, 1)
        self.act = nn.GELU()
        self.conv_local = nn.Conv2d(dim, dim, LOCAL_KERNEL, padding=LOCAL_PAD, groups=dim)
        self.conv_dilated = nn.Conv2d(
            dim, dim, DILATED_KERNEL, padding=DILATED_PAD, dilation=DILATION, groups=dim
        )
        self.conv_mix = nn.Conv2d(dim, dim, 1)
        self.proj_2 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        B, N, C = x.shape
        m = x.transpose(1, 2).reshape(B, C, H, W)
        u = self.act(self.proj_1(m))
        gate = self.conv_mix(self.conv_dilated(self.conv_local(u)))
        out = self.proj_2(u * gate) + m
        return out.flatten(2).transpose(1, 2)

    def score_elements(self, H: int, W: int) -> int:
        """No attention matrix: the gate is an activation the size of the input."""
        return 0

    def macs(self, H: int, W: int) -> int:
        """Three 1×1 convs ``3·N·C²`` plus the depthwise ``N·C·(5² + 7²)``.

        The gating product ``u·gate`` (``N·C``), GELU, shortcut and biases are not counted:
        fvcore has no handle for elementwise ops, and this gives the published 357.96M at
        dim 768, 14×14 (358.11M with the gating product charged one MAC per element).
        """
        n, c = H * W, self.dim
        return 3 * n * c * c + n * c * (LOCAL_KERNEL**2 + DILATED_KERNEL**2)

    def gating_macs(self, H: int, W: int) -> int:
        """The elementwise gating product fvcore skips: one multiply per element."""
        return H * W * self.dim
