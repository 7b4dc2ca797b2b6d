"""QuadTree attention (Tang et al. 2022): coarse-to-fine attention over a token pyramid.

Queries, keys and values are ``1x1`` projections of the tokens. A pyramid of ``levels`` maps
halves the map at each step: queries and keys by 2x2 average pooling, values (attention type B)
through a reduction branch (GroupNorm → GELU → ``2x2`` stride-2 conv → GroupNorm → GELU →
``1x1`` conv). The coarsest level runs full attention; every query there keeps, per head, the
``topk`` keys with the highest scores. At the next finer level each query attends only to the
children (2x2 blocks) of the ``topk`` keys its parent kept, ``4·topk`` keys, and keeps its own
``topk`` of them for the level below. Each level's message gets a locally enhanced position
term (a depthwise ``3x3`` conv of that level's values); the messages are merged with
softmax-normalised level weights, a coarse message being shared by its four children, and a
``Linear`` projects the result.

Any map size runs: where a level has an odd side, pooling averages the real tokens only
(``ceil_mode``), the reduction conv and the grouping of queries into 2x2 blocks see the map
zero-padded at the bottom/right, and padded keys are masked out of the fine attention; padded
queries are dropped. The coarsest level must hold at least ``topk`` tokens.

The benchmark's setting: 2 levels (its ``sr_ratio``), type B, top-8, qkv bias. Selection is
made on the raw scores ``q·kᵀ`` (the same order as the softmax the published code ranks).
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

#: MACs per element that fvcore (and so the published figure) charges a GroupNorm with affine.
GROUPNORM_MACS_PER_ELEMENT = 5

LEVELS = options.Knob(
    "levels",
    "int",
    "QuadTree: token-pyramid levels (the published sr_ratio; 2 = one 2x reduction).",
    minimum=2,
    maximum=8,
)
TOPK = options.Knob(
    "topk",
    "int",
    "QuadTree: keys each query keeps per head for the next finer level.",
    minimum=1,
)


def _ceil_half(n: int) -> int:
    return (n + 1) // 2


@register_attention(
    "quadtree",
    "QuadTree attention: coarse-to-fine top-k attention over a token pyramid",
    knobs={LEVELS: 2, TOPK: 8},
)
class QuadTreeAttention(Attention):
    """QuadTree attention, type B. Parameters at dim 768, 12 heads, 2 levels: 5,331,458."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        impl: str = "reference",
        levels: int = 2,
        topk: int = 8,
    ) -> None:
        super().__init__(dim, num_heads, qkv_bias, impl)
        self.levels = int(options.check("levels", levels))
        self.topk = int(options.check("topk", topk))
        self.q = kernels.Linear(dim, dim, bias=qkv_bias)
        self.k = kernels.Linear(dim, dim, bias=qkv_bias)
        self.v = kernels.Linear(dim, dim, bias=qkv_bias)
        self.reduce_pre = nn.ModuleList(
            nn.Sequential(nn.GroupNorm(1, dim), nn.GELU()) for _ in range(self.levels - 1)
        )
        self.reduce_post = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(dim, dim, 2, stride=2),
                nn.GroupNorm(1, dim),
                nn.GELU(),
                nn.Conv2d(dim, dim, 1),
            )
            for _ in range(self.levels - 1)
        )
        # position terms and merge weights, coarsest level first
        self.lepe = nn.ModuleList(
            nn.Conv2d(dim, dim, 3, padding=1, groups=dim) for _ in range(self.levels)
        )
        self.level_weight = nn.Parameter(torch.randn(self.levels))
        self.proj = kernels.Linear(dim, dim)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, heads={self.num_heads}, levels={self.levels}, "
            f"topk={self.topk}, impl={self.impl}"
        )

    # ------------------------------------------------------------------------------------------
    # pyramid geometry
    # ------------------------------------------------------------------------------------------

    def pyramid(self, H: int, W: int) -> list[tuple[int, int, int, int]]:
        """Per level, finest first: ``(h, w, Hp, Wp)``, the real map and the padded one the
        level's queries and keys live on (twice the next level's map; the coarsest: itself)."""
        real = [(H, W)]
        for _ in range(self.levels - 1):
            h, w = real[-1]
            real.append((_ceil_half(h), _ceil_half(w)))
        hc, wc = real[-1]
        if hc * wc < self.topk:
            raise ConfigError(
                f"a {H}x{W} token map is too small for quadtree with {self.levels} levels and "
                f"topk {self.topk}: its coarsest level is {hc}x{wc} = {hc * wc} tokens, "
                f"fewer than topk"
            )
        out = [(h, w, 2 * real[i + 1][0], 2 * real[i + 1][1]) for i, (h, w) in enumerate(real[:-1])]
        return [*out, (hc, wc, hc, wc)]

    def score_elements(self, H: int, W: int) -> int:
        geo = self.pyramid(H, W)
        hc, wc = geo[-1][:2]
        fine = sum(hp * wp * 4 * self.topk for _, _, hp, wp in geo[:-1])
        return self.num_heads * ((hc * wc) ** 2 + fine)

    # ------------------------------------------------------------------------------------------
    # forward
    # ------------------------------------------------------------------------------------------

    def _heads(self, m: torch.Tensor, hp: int, wp: int) -> torch.Tensor:
        """``(B, C, h, w)`` map → ``(B, heads, hp·wp, hd)``, zero-padded to ``hp x wp``."""
        B, C, h, w = m.shape
        m = F.pad(m, (0, wp - w, 0, hp - h)) if (hp, wp) != (h, w) else m
        return m.reshape(B, self.num_heads, self.head_dim, hp * wp).transpose(-2, -1)

    def _blocks(self, t: torch.Tensor, hp: int, wp: int) -> torch.Tensor:
        """``(B, heads, hp·wp, d)`` → ``(B, heads, hp/2·wp/2, 4, d)``: 2x2 blocks, row-major."""
        B, nh, _, d = t.shape
        t = t.reshape(B, nh, hp // 2, 2, wp // 2, 2, d).permute(0, 1, 2, 4, 3, 5, 6)
        return t.reshape(B, nh, (hp // 2) * (wp // 2), 4, d)

    def _unblock(self, t: torch.Tensor, hp: int, wp: int, h: int, w: int) -> torch.Tensor:
        """Inverse of :meth:`_blocks` on ``(B, heads, groups, 4, d)``, cropped to ``h x w``:
        ``(B, heads, h·w, d)``."""
        B, nh, _, _, d = t.shape
        t = t.reshape(B, nh, hp // 2, wp // 2, 2, 2, d).permute(0, 1, 2, 4, 3, 5, 6)
        t = t.reshape(B, nh, hp, wp, d)[:, :, :h, :w]
        return t.reshape(B, nh, h * w, d)

    def _coarse(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, select: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Full attention; the kept keys ``(B, heads, N, topk)`` when ``select``."""
        keep = None
        if self.impl == "fused":
            if select:
                keep = (q @ k.transpose(-2, -1)).topk(self.topk, dim=-1).indices
            out = kernels.attention(q, k, v, self.scale)
        else:
            logits = q @ k.transpose(-2, -1)
            if select:
                keep = logits.topk(self.topk, dim=-1).indices
            out = (logits * self.scale).softmax(dim=-1) @ v
        return out, keep

    def _fine(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        parents: torch.Tensor,
        geo: tuple[int, int, int, int],
        parent_width: int,
        select: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attention of each 2x2 block of queries to the children of its parent's kept keys.

        ``q, k, v``: ``(B, heads, hp·wp, hd)`` on the padded map; ``parents``: ``(B, heads,
        hp/2·wp/2, topk)`` kept keys of the parent level (indices into a map ``parent_width``
        wide). Returns the message ``(B, heads, groups, 4, hd)`` and, when ``select``, this
        level's kept keys ``(B, heads, h·w, topk)`` (indices into this padded map)."""
        h, w, hp, wp = geo
        B, nh, _, hd = q.shape
        g, kk = parents.shape[2], self.topk
        py, px = parents // parent_width, parents % parent_width
        rows = torch.stack([2 * py, 2 * py, 2 * py + 1, 2 * py + 1], dim=-1)
        cols = torch.stack([2 * px, 2 * px + 1, 2 * px, 2 * px + 1], dim=-1)
        cand = (rows * wp + cols).reshape(B, nh, g * 4 * kk)  # (B, heads, groups·4k)
        gather = cand.unsqueeze(-1).expand(-1, -1, -1, hd)
        kg = k.gather(2, gather).reshape(B, nh, g, 4 * kk, hd)
        vg = v.gather(2, gather).reshape(B, nh, g, 4 * kk, hd)
        qg = self._blocks(q, hp, wp)  # (B, heads, groups, 4, hd)
        cand = cand.reshape(B, nh, g, 1, 4 * kk)

        bias = None
        if (h, w) != (hp, wp):  # padded keys take no part
            valid = torch.zeros(hp, wp, dtype=torch.bool, device=q.device)
            valid[:h, :w] = True
            ok = valid.reshape(-1)[cand]
            bias = torch.zeros(ok.shape, dtype=q.dtype, device=q.device)
            bias = bias.masked_fill(~ok, float("-inf"))

        keep = None
        if self.impl == "fused":
            if select:
                logits = qg @ kg.transpose(-2, -1)
                keep = (logits if bias is None else logits + bias).topk(kk, dim=-1).indices
            out = kernels.attention(qg, kg, vg, self.scale, bias)
        else:
            logits = qg @ kg.transpose(-2, -1)
            if bias is not None:
                logits = logits + bias
            if select:
                keep = logits.topk(kk, dim=-1).indices
            out = (logits * self.scale).softmax(dim=-1) @ vg
        if keep is not None:  # local candidate → key index, back on the (cropped) map
            keep = cand.expand(-1, -1, -1, 4, -1).gather(-1, keep)
            keep = self._unblock(keep, hp, wp, h, w)
        return out, keep

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        B, N, C = x.shape
        geo = self.pyramid(H, W)

        def to_map(t: torch.Tensor) -> torch.Tensor:
            return t.transpose(1, 2).reshape(B, C, H, W)

        qs, ks, vs = [to_map(self.q(x))], [to_map(self.k(x))], [to_map(self.v(x))]
        for i in range(self.levels - 1):
            h, w, hp, wp = geo[i]
            qs.append(F.avg_pool2d(qs[-1], 2, ceil_mode=True))
            ks.append(F.avg_pool2d(ks[-1], 2, ceil_mode=True))
            pre = self.reduce_pre[i](vs[-1])
            if (hp, wp) != (h, w):
                pre = F.pad(pre, (0, wp - w, 0, hp - h))
            vs.append(self.reduce_post[i](pre))

        weight = self.level_weight.softmax(dim=0)
        top = self.levels - 1
        hc, wc = geo[top][:2]
        q, k, v = (self._heads(t[top], hc, wc) for t in (qs, ks, vs))
        msg, keep = self._coarse(q, k, v, select=True)
        pos = self._heads(self.lepe[0](vs[top]), hc, wc)
        merged = (msg + pos) * weight[0]  # (B, heads, h·w, hd) on the real map
        parent_width = wc
        for j, lvl in enumerate(range(top - 1, -1, -1), start=1):
            h, w, hp, wp = geo[lvl]
            q, k, v = (self._heads(t[lvl], hp, wp) for t in (qs, ks, vs))
            assert keep is not None
            msg, keep = self._fine(q, k, v, keep, geo[lvl], parent_width, select=lvl > 0)
            pos = self._blocks(self._heads(self.lepe[j](vs[lvl]), hp, wp), hp, wp)
            merged = merged.unsqueeze(3) + (msg + pos) * weight[j]
            merged = self._unblock(merged, hp, wp, h, w)
            parent_width = wp
        out = merged.transpose(-2, -1).reshape(B, C, N).transpose(1, 2)
        return self.proj(out)

    # ------------------------------------------------------------------------------------------
    # counts
    # ------------------------------------------------------------------------------------------

    def macs_breakdown(self, H: int, W: int) -> dict[str, int]:
        """MACs of one image by part: ``projections`` (q, k, v, proj: ``4·N·C²``),
        ``reduction`` (per step the ``2x2`` conv ``4·n'·C²`` and the ``1x1`` conv ``n'·C²``,
        ``n'`` the reduced map), ``group_norm`` (5 per element, fvcore's rate, on the map in
        and the map out of each step), ``lepe`` (``9·n·C`` per level), ``coarse`` (the coarsest
        level's two products, ``2·n²·C``), ``fine`` (per finer level, ``2·hp·wp·4k·C`` on the
        padded map) and ``selection`` (the fused path's extra ``q·kᵀ`` for the top-k where the
        score matrix is not otherwise formed). Softmax, GELU, pooling, biases, masking, top-k
        and gathers are not MACs."""
        geo = self.pyramid(H, W)
        c, k = self.dim, self.topk
        nc = geo[-1][0] * geo[-1][1]
        reduction = norm = 0
        for i in range(self.levels - 1):
            n_in, n_out = geo[i][0] * geo[i][1], geo[i + 1][0] * geo[i + 1][1]
            reduction += 5 * n_out * c * c
            norm += GROUPNORM_MACS_PER_ELEMENT * (n_in + n_out) * c
        fine = [2 * hp * wp * 4 * k * c for _, _, hp, wp in geo[:-1]]
        selection = 0
        if self.impl == "fused":
            selection = nc * nc * c + sum(f // 2 for f in fine[1:])
        return {
            "projections": 4 * H * W * c * c,
            "reduction": reduction,
            "group_norm": norm,
            "lepe": sum(9 * h * w * c for h, w, _, _ in geo),
            "coarse": 2 * nc * nc * c,
            "fine": sum(fine),
            "selection": selection,
        }

    def macs(self, H: int, W: int) -> int:
        """The sum of :meth:`macs_breakdown`: 622,884,864 at dim 768, 12 heads, 14x14 (the
        reference path). The published 613.25M is this less the fine level's two products
        (9,633,792): the published layer ran them as custom autograd functions, which fvcore's
        trace cannot see."""
        return sum(self.macs_breakdown(H, W).values())
