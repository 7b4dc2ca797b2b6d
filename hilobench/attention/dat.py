"""Deformable attention (DAT, Xia et al. 2022): keys and values at learned sampling points.

Queries come from every token. A small offset network, shared by the heads of each of ``g``
offset groups, looks at the group's query channels (depthwise ``k x k`` conv → LayerNorm →
GELU → ``1x1`` conv to 2 channels) and moves each point of a reference grid (one point per
token, at the pixel centres in ``[-1, 1]`` coordinates) by ``tanh(offset) · factor / side``.
The input map is sampled bilinearly at the moved points (``grid_sample``, corners aligned),
group by group, and the samples give keys and values through ``1x1`` projections. Every query
attends to all samples; a relative position bias, one learned ``(2Hr−1) x (2Wr−1)`` table per
head, is read bilinearly at half the query–sample displacement.

The table's size is fixed when the layer is built (``rpe_size``, the 14x14 map of the 1/16
stage by default): since it is read in normalised coordinates, the same table serves any map
size, where the published layer only runs on the map it was built for. The projections are
``Linear`` layers on the tokens (a ``1x1`` conv by another name: same weights, same MACs). The
benchmark's setting: 3 offset groups, offset range factor 2, kernel 5 (the 1/16 stage).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hilobench.attention import kernels
from hilobench.attention.base import Attention
from hilobench.attention.registry import register_attention
from hilobench.core import options
from hilobench.core.errors import ConfigError

#: MACs per output element of bilinear ``grid_sample`` (four weighted neighbours): the rate of
#: ``measure.flop_handles.grid_sampler_handle`` and of fvcore, so of the published figure.
GRID_SAMPLE_BILINEAR_MACS = 4
#: MACs per element that fvcore (and so the published figure) charges a LayerNorm with affine.
LAYERNORM_MACS_PER_ELEMENT = 5

OFFSET_GROUPS = options.Knob(
    "offset_groups",
    "int",
    "DAT: offset groups (must divide heads and dim).",
    minimum=1,
)


def reference_points(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``(h, w, 2)`` pixel centres as (y, x) in ``[-1, 1]``."""
    ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) * (2.0 / h) - 1.0
    xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) * (2.0 / w) - 1.0
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1)


@register_attention(
    "dat",
    "deformable attention (DAT): keys/values at learned sampling points",
    knobs={OFFSET_GROUPS: 3},
)
class DeformableAttention(Attention):
    """DAT's deformable multi-head attention with a stride-1 offset network (one sample per
    token). Parameters at dim 768, 12 heads, 3 groups, kernel 5: 2,378,796."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        impl: str = "reference",
        offset_groups: int = 3,
        kernel: int = 5,
        offset_range: float = 2.0,
        rpe_size: tuple[int, int] = (14, 14),
    ) -> None:
        super().__init__(dim, num_heads, qkv_bias, impl)
        g = int(options.check("offset_groups", offset_groups))
        if num_heads % g or dim % g:
            raise ConfigError(
                f"offset_groups ({g}) must divide heads ({num_heads}) and dim ({dim})"
            )
        if isinstance(kernel, bool) or not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
            raise ConfigError(f"kernel must be an odd integer >= 1, got {kernel!r}")
        if not offset_range > 0:
            raise ConfigError(f"offset_range must be positive, got {offset_range!r}")
        rh, rw = rpe_size
        if min(rh, rw) < 1:
            raise ConfigError(f"rpe_size must be positive, got {rpe_size!r}")
        self.groups, self.kernel, self.offset_range = g, kernel, float(offset_range)
        cg = dim // g
        self.q = kernels.Linear(dim, dim, bias=qkv_bias)
        self.k = kernels.Linear(dim, dim, bias=qkv_bias)
        self.v = kernels.Linear(dim, dim, bias=qkv_bias)
        self.proj = kernels.Linear(dim, dim)
        self.offset_dw = nn.Conv2d(cg, cg, kernel, padding=kernel // 2, groups=cg)
        self.offset_norm = nn.LayerNorm(cg)
        self.offset_pw = nn.Conv2d(cg, 2, 1, bias=False)
        table = torch.zeros(num_heads, 2 * rh - 1, 2 * rw - 1)
        self.rpe_table = nn.Parameter(nn.init.trunc_normal_(table, std=0.01))

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, heads={self.num_heads}, offset_groups={self.groups}, "
            f"kernel={self.kernel}, impl={self.impl}"
        )

    def score_elements(self, H: int, W: int) -> int:
        n = H * W  # one sample per token
        return self.num_heads * n * n

    def _sample_points(self, q: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """``(B·g, H, W, 2)`` sampling points (y, x) in ``[-1, 1]`` from the queries."""
        B = q.shape[0]
        g, cg = self.groups, self.dim // self.groups
        qg = q.reshape(B, H, W, g, cg).permute(0, 3, 4, 1, 2).reshape(B * g, cg, H, W)
        off = self.offset_dw(qg).permute(0, 2, 3, 1)  # (B·g, H, W, cg)
        off = self.offset_pw(F.gelu(self.offset_norm(off)).permute(0, 3, 1, 2))
        scale = torch.tensor([1.0 / H, 1.0 / W], device=q.device, dtype=q.dtype)
        off = off.permute(0, 2, 3, 1).tanh() * (scale * self.offset_range)
        return off + reference_points(H, W, q.device, q.dtype)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        B, N, C = x.shape
        g, cg, heads, hd = self.groups, C // self.groups, self.num_heads, self.head_dim
        q = self.q(x)
        pos = self._sample_points(q, H, W)  # (B·g, H, W, 2)

        xg = x.reshape(B, H, W, g, cg).permute(0, 3, 4, 1, 2).reshape(B * g, cg, H, W)
        grid = pos.flip(-1)  # grid_sample wants (x, y)
        sampled = F.grid_sample(xg, grid, mode="bilinear", align_corners=True)
        sampled = sampled.reshape(B, C, N).transpose(1, 2)  # (B, Ns, C), channels group-major
        k = self.k(sampled).reshape(B, N, heads, hd).transpose(1, 2)
        v = self.v(sampled).reshape(B, N, heads, hd).transpose(1, 2)
        q = q.reshape(B, N, heads, hd).transpose(1, 2)

        # relative position bias at half the query-to-sample displacement, read per group
        qgrid = reference_points(H, W, x.device, x.dtype).reshape(1, N, 1, 2)
        disp = (qgrid - pos.reshape(B * g, 1, N, 2)) * 0.5  # (B·g, Nq, Ns, 2)
        table = self.rpe_table.reshape(1, g, heads // g, *self.rpe_table.shape[1:])
        table = table.expand(B, -1, -1, -1, -1).reshape(B * g, heads // g, *table.shape[-2:])
        bias = F.grid_sample(table, disp.flip(-1), mode="bilinear", align_corners=True)
        bias = bias.reshape(B, heads, N, N)

        if self.impl == "fused":  # the faster exact kernel for this shape (kernels.py)
            out = kernels.attention(q, k, v, self.scale, bias)
        else:
            attn = (q @ k.transpose(-2, -1)) * self.scale + bias
            out = attn.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(B, N, C))

    def macs(self, H: int, W: int) -> int:
        """Linears ``q, k, v, proj`` (``4·N·C²``, ``N`` samples = ``N`` tokens), the offset
        network (depthwise ``N·C·k²``, its LayerNorm at ``LAYERNORM_MACS_PER_ELEMENT`` per
        element, the ``1x1`` conv to two channels ``2·N·C``), the bilinear sampling of the map
        (``4·N·C``) and of the bias table (``4·heads·N²``), and the two attention products
        (``2·N²·C``). 528,691,968 at dim 768, 12 heads, 14x14: the published 528.69M, which
        fvcore counted with its LayerNorm and ``grid_sampler`` rates. GELU, tanh, softmax and
        biases are not counted."""
        n, c = H * W, self.dim
        s = GRID_SAMPLE_BILINEAR_MACS
        offset_net = n * c * self.kernel**2 + LAYERNORM_MACS_PER_ELEMENT * n * c + 2 * n * c
        sampling = s * n * c + s * self.num_heads * n * n
        return 4 * n * c * c + offset_net + sampling + 2 * n * n * c
