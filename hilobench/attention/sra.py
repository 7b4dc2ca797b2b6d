"""Spatial-reduction attention (PVT): global attention to keys/values from a downsampled map."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hilobench.attention import kernels
from hilobench.attention.base import Attention
from hilobench.attention.msa import attend
from hilobench.attention.registry import register_attention
from hilobench.core import options
from hilobench.core.errors import ConfigError

#: MACs per element that fvcore (and so the published SRA figure) charges a LayerNorm with affine.
LAYERNORM_MACS_PER_ELEMENT = 5


def check_sr_ratio(sr_ratio: object) -> int:
    """Validate a spatial-reduction ratio; return it as int."""
    return int(options.check("sr", sr_ratio, "sr_ratio"))


@register_attention("sra", "spatial-reduction attention (PVT)", knobs={"sr": 2})
class SpatialReductionAttention(Attention):
    """Queries from every token; keys/values from the map reduced ``sr_ratio``× per side.

    The reduction is a ``Conv2d`` with kernel = stride = ``sr_ratio`` followed by LayerNorm;
    ``sr_ratio=1`` means no reduction (no conv, no norm), i.e. global MSA with split q / kv
    linears. On a map whose sides are not multiples of ``sr_ratio`` the conv drops the last
    rows/columns, giving ``floor(H/r) × floor(W/r)`` keys/values, as PVT and Twins do; the
    queries (and the output) keep all ``H·W`` tokens. ``pad_odd=True`` instead zero-pads the map
    right/bottom to a multiple of ``sr_ratio`` first (``ceil`` sides), so the border pixels
    also reach the keys/values; it is not the published model.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        impl: str = "reference",
        sr_ratio: int = 2,
        pad_odd: bool = False,
    ) -> None:
        super().__init__(dim, num_heads, qkv_bias, impl)
        self.sr_ratio = check_sr_ratio(sr_ratio)
        if not isinstance(pad_odd, bool):
            raise ConfigError(f"pad_odd must be true or false, got {pad_odd!r}")
        self.pad_odd = pad_odd
        self.q = kernels.Linear(dim, dim, bias=qkv_bias)
        self.kv = kernels.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = kernels.Linear(dim, dim)
        if self.sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=self.sr_ratio, stride=self.sr_ratio)
            # the token map it reduces is a channels-last view of the tokens: a weight in that
            # layout spares the convolution a copy of it per call (same values, same output)
            self.sr.weight.data = self.sr.weight.data.contiguous(memory_format=torch.channels_last)
            self.norm = nn.LayerNorm(dim)

    def kv_size(self, H: int, W: int) -> tuple[int, int]:
        """Side lengths of the key/value map for an ``H × W`` input map."""
        r = self.sr_ratio
        if r == 1:
            return H, W
        if self.pad_odd:
            return -(-H // r), -(-W // r)
        if H < r or W < r:
            raise ConfigError(
                f"SRA with sr_ratio {r} needs a token map of at least {r}x{r}, got {H}x{W} "
                "(the reduction conv rounds down and would leave no keys)"
            )
        return H // r, W // r

    def score_elements(self, H: int, W: int) -> int:
        """Every token attends to the reduced map."""
        kh, kw = self.kv_size(H, W)
        return self.num_heads * H * W * kh * kw

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        B, N, C = x.shape
        q = self.q(x).reshape(B, N, self.num_heads, self.head_dim).transpose(1, 2)
        if self.sr_ratio > 1:
            kv_in = self.norm(self._reduce(x, H, W))
        else:
            kv_in = x
        kv = self.kv(kv_in).reshape(B, -1, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        k, v = kv.unbind(0)
        out = attend(q, k, v, self.scale, self.impl)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))

    def _reduce(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """The reduction conv on the token map: ``(B, H·W, C)`` → ``(B, kh·kw, C)``.

        Its kernel equals its stride, so it is a linear map of each ``r x r`` patch; the fused
        path runs it as one (the same products, by the faster GEMM for the shape: 32-39 ms
        against the convolution's 40-48 ms at batch 8, 14x14, dim 768, 2 threads on the
        development CPU), with the channels-last weight read as that linear's ``(C, r·r·C)``
        weight, a view."""
        B, N, C = x.shape
        r = self.sr_ratio
        kh, kw = self.kv_size(H, W)  # rejects a map the conv would reduce to nothing
        pad_h, pad_w = (-H) % r, (-W) % r
        pad = self.pad_odd and (pad_h or pad_w)
        if self.impl != "fused":
            m = x.transpose(1, 2).reshape(B, C, H, W)
            if pad:
                m = F.pad(m, (0, pad_w, 0, pad_h))
            return self.sr(m).flatten(2).transpose(1, 2)
        m = x.reshape(B, H, W, C)
        if pad:
            m = F.pad(m, (0, 0, 0, pad_w, 0, pad_h))
        m = m[:, : kh * r, : kw * r].reshape(B, kh, r, kw, r, C)
        patches = m.permute(0, 1, 3, 2, 4, 5).reshape(B, kh * kw, r * r * C)
        weight = self.sr.weight.permute(0, 2, 3, 1).reshape(C, r * r * C)
        return kernels.linear(patches, weight, self.sr.bias)

    def macs(self, H: int, W: int) -> int:
        """q, kv and proj linears, the reduction conv and its LayerNorm, and the attention matmuls.

        The LayerNorm is charged ``LAYERNORM_MACS_PER_ELEMENT`` per element, as fvcore counts it,
        so the analytic figure agrees with the traced one and with the published 419.56M
        (dim 768, 12 heads, sr 2, 14×14). Softmax, scaling and biases are not counted. ``m`` is
        the key/value count of :meth:`kv_size`, so odd maps count what the forward computes.
        """
        n, c, r = H * W, self.dim, self.sr_ratio
        kh, kw = self.kv_size(H, W)
        m = kh * kw
        total = n * c * c + m * c * 2 * c + n * c * c + 2 * n * m * c
        if r > 1:
            total += m * c * c * r * r + LAYERNORM_MACS_PER_ELEMENT * m * c
        return total
