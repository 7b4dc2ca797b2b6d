"""Focal self-attention (Yang et al. 2021): fine tokens near a window plus pooled coarse tokens.

The map is zero-padded right/bottom to a multiple of the window ``w`` and cut into ``w x w``
windows. Every query of a window attends to three groups of keys/values, concatenated:

1. **its window**: the ``w²`` tokens, with a Swin-style relative position bias;
2. **its surroundings** (focal level 1): the window's keys moved by ``(±e, ±e)`` (``e`` the
   expand size) with a cyclic roll of the padded map; of each of the four moved windows the
   positions that do not fall back inside the window are kept, ``4·(w² − (w−e)²)`` keys
   (132 for w=7, e=3: the 120-token ring of width ``e`` plus the 12 tokens the four moved
   windows share, as the published layer has them), each with its own learned bias per
   query position. The roll wraps around the padded map, so windows at the border see tokens
   of the opposite border, as in the published layer;
3. **pooled windows** (focal level 2): every window is pooled to one token by a learned
   linear map over its ``w²`` positions (per channel, "fc" pooling, initialised to the mean),
   the pooled map goes through the same ``qkv`` linear, and a window attends to the
   ``fw x fw`` pooled tokens centred on its own (``fw`` the focal window). Pooled neighbours
   beyond the map are zero keys/values with logit ``MASK_VALUE`` added, as published; their
   bias comes from a ``(2w... )`` table indexed by (query position − pooled offset).

On a map no larger than the window (``min(H, W) <= w``) there are no surroundings: the layer
attends to its window and the pooled windows only (``expand_size`` taken as 0 for that map), the
authors' rule (their block sets ``expand_size = 0`` there). Without it the roll wraps the map
onto the window's own tokens, and those duplicates shift the softmax (max abs difference 0.95 on
a 7x7 map with the defaults). The window itself stays as built (its bias tables are parameters),
so a map smaller than the window is padded to it; the authors' block shrinks the window to the
map instead, which only a layer built with that window reproduces.

Padded tokens go through ``qkv`` like real ones (their keys/values are the biases), are attended
to without a mask, and their outputs are cropped, so any map size works and the MAC count uses
the padded token count. The setting is the benchmark's and the paper's 1/16 stage: window 7,
focal level 2, focal window 3, expand size 3; these are fixed defaults (builder arguments, not
knobs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hilobench.attention import kernels
from hilobench.attention.base import Attention, check_window
from hilobench.attention.registry import register_attention
from hilobench.attention.window import MASK_VALUE, relative_position_index
from hilobench.core.errors import ConfigError

#: The four moves of the window that bring in its surroundings, as (rows, columns) steps
#: ``s``: moved[i, j] = map[i + s_y, j + s_x]; the order fixes the layout of the bias table.
_MOVES = ((1, 1), (1, -1), (-1, 1), (-1, -1))


def surrounding_positions(window: int, expand: int) -> torch.Tensor:
    """Flat indices into the four moved windows (``4·w²`` slots, in ``_MOVES`` order) of the
    positions that land outside the window itself."""
    r = torch.arange(window, device="cpu")  # CPU even while building on meta (nonzero below)
    keep = []
    for sy, sx in _MOVES:
        ry, rx = r + sy * expand, r + sx * expand
        outside_y = (ry < 0) | (ry >= window)
        outside_x = (rx < 0) | (rx >= window)
        keep.append((outside_y[:, None] | outside_x[None, :]).flatten())
    return torch.cat(keep).nonzero().flatten()


@register_attention(
    "focal",
    "Focal self-attention (window 7, its surroundings, pooled windows)",
)
class FocalAttention(Attention):
    """Focal attention at focal level 2: fine keys of the window and its ``expand`` surroundings,
    coarse keys of the ``focal_window²`` pooled windows around it.

    Parameters: ``qkv: C→3C``, ``proj: C→C``, the window's ``(2w−1)² x heads`` bias table, a
    ``heads x w² x 4(w²−(w−e)²)`` bias for the surroundings, the pooling ``Linear(w², 1)`` and a
    ``heads x (w+fw−1)²`` bias table for the pooled windows (2,443,034 at dim 768, 12 heads).
    """

    #: index buffers, derived from the sizes (kept out of the state dict)
    window_index: torch.Tensor
    surrounding_index: torch.Tensor
    pooled_index: torch.Tensor

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        impl: str = "reference",
        window: int = 7,
        expand_size: int = 3,
        focal_window: int = 3,
    ) -> None:
        super().__init__(dim, num_heads, qkv_bias, impl)
        w = check_window(window)
        for name, value in (("expand_size", expand_size), ("focal_window", focal_window)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
        if not 0 <= expand_size < w:
            raise ConfigError(f"expand_size must be in [0, window={w}), got {expand_size}")
        if focal_window < 1 or focal_window % 2 == 0:
            raise ConfigError(f"focal_window must be an odd integer >= 1, got {focal_window}")
        self.window, self.expand_size, self.focal_window = w, expand_size, focal_window
        n = w * w

        self.qkv = kernels.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = kernels.Linear(dim, dim)

        def table(*shape: int) -> nn.Parameter:
            return nn.Parameter(nn.init.trunc_normal_(torch.zeros(*shape), std=0.02))

        # 1. inside the window
        self.relative_position_bias_table = table((2 * w - 1) ** 2, num_heads)
        self.register_buffer(
            "window_index", relative_position_index(w, w, w, torch.device("cpu")), persistent=False
        )
        # 2. surroundings: one learned bias per (head, query position, surrounding slot)
        self.register_buffer(
            "surrounding_index", surrounding_positions(w, expand_size), persistent=False
        )
        self.surrounding_bias = table(num_heads, n, self.n_surrounding)
        # 3. pooled windows: the pooling map and a table indexed by query position - offset
        self.pool = kernels.Linear(n, 1)
        nn.init.constant_(self.pool.weight, 1.0 / n)
        nn.init.zeros_(self.pool.bias)
        side = w + focal_window - 1
        self.pooled_bias_table = table(num_heads, side * side)
        ys = torch.arange(w).repeat_interleave(w)
        xs = torch.arange(w).repeat(w)
        ky = torch.arange(focal_window).repeat_interleave(focal_window)
        kx = torch.arange(focal_window).repeat(focal_window)
        dy = ys[:, None] - ky[None, :] + focal_window - 1
        dx = xs[:, None] - kx[None, :] + focal_window - 1
        self.register_buffer("pooled_index", dy * side + dx, persistent=False)

    @property
    def n_surrounding(self) -> int:
        w, e = self.window, self.expand_size
        return 4 * (w * w - (w - e) ** 2)

    def expand_at(self, H: int, W: int) -> int:
        """The expand size on an ``H x W`` map: 0 (no surroundings) on a map no larger than
        the window, the authors' rule; the built one otherwise."""
        return 0 if min(H, W) <= self.window else self.expand_size

    def n_keys(self, H: int | None = None, W: int | None = None) -> int:
        """Keys per query: window, surroundings (none on a map within the window), pooled
        windows; without a map, those of a map larger than the window."""
        within = H is not None and W is not None and not self.expand_at(H, W)
        sur = 0 if within else self.n_surrounding
        return self.window**2 + sur + self.focal_window**2

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, heads={self.num_heads}, window={self.window}, "
            f"expand_size={self.expand_size}, focal_window={self.focal_window}, impl={self.impl}"
        )

    def _padded(self, H: int, W: int) -> tuple[int, int]:
        w = self.window
        return -(-H // w) * w, -(-W // w) * w

    def score_elements(self, H: int, W: int) -> int:
        hp, wp = self._padded(H, W)
        return self.num_heads * hp * wp * self.n_keys(H, W)

    def _windows(self, t: torch.Tensor) -> torch.Tensor:
        """``(B, Hp, Wp, parts·C)`` → ``(parts, B, windows·heads, w², hd)``."""
        B, hp, wp, c = t.shape
        w, heads, hd = self.window, self.num_heads, self.head_dim
        parts = c // self.dim
        t = t.reshape(B, hp // w, w, wp // w, w, parts, heads, hd)
        t = t.permute(5, 0, 1, 3, 6, 2, 4, 7)
        return t.reshape(parts, B, -1, w * w, hd)

    def _bias(self, nh: int, nw: int, device: torch.device, expand: int) -> torch.Tensor:
        """Additive logits ``(windows·heads, w², keys)``: the three position biases and the
        mask of pooled neighbours beyond the map."""
        w, fw, heads = self.window, self.focal_window, self.num_heads
        n = w * w
        inside = self.relative_position_bias_table[self.window_index.reshape(-1)]
        inside = inside.view(n, n, heads).permute(2, 0, 1)
        pooled = self.pooled_bias_table[:, self.pooled_index.reshape(-1)].view(heads, n, fw * fw)
        parts = [inside]
        if expand:
            parts.append(self.surrounding_bias)
        parts.append(pooled)
        bias = torch.cat(parts, dim=-1)  # (heads, n, keys)
        # pooled neighbour (window + offset) beyond the map: MASK_VALUE
        r = fw // 2
        off = torch.arange(fw, device=device) - r
        wy = torch.arange(nh, device=device)[:, None] + off[None, :]  # (nh, fw)
        wx = torch.arange(nw, device=device)[:, None] + off[None, :]
        oy = torch.logical_or(wy < 0, wy >= nh)
        ox = torch.logical_or(wx < 0, wx >= nw)
        outside = torch.logical_or(oy[:, None, :, None], ox[None, :, None, :])  # (nh, nw, fw, fw)
        outside = outside.reshape(nh * nw, 1, 1, fw * fw)
        mask = torch.zeros(outside.shape, device=device).masked_fill(outside, MASK_VALUE)
        fine = torch.zeros(nh * nw, 1, 1, bias.shape[-1] - fw * fw, device=device)
        mask = torch.cat([fine, mask], dim=-1)  # (windows, 1, 1, keys)
        return (bias[None] + mask).reshape(nh * nw * heads, n, -1)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        B, N, C = x.shape
        w, e, fw = self.window, self.expand_at(H, W), self.focal_window
        heads, hd = self.num_heads, self.head_dim
        hp, wp = self._padded(H, W)
        nh, nw = hp // w, wp // w

        x = x.reshape(B, H, W, C)
        if hp != H or wp != W:
            x = F.pad(x, (0, 0, 0, wp - W, 0, hp - H))
        q, kv = self.qkv(x).split([C, 2 * C], dim=-1)  # (B, Hp, Wp, C), (B, Hp, Wp, 2C)

        queries = self._windows(q)[0]
        k_own, v_own = self._windows(kv).unbind(0)
        keys, values = [k_own], [v_own]
        if e:
            moved = [torch.roll(kv, shifts=(-sy * e, -sx * e), dims=(1, 2)) for sy, sx in _MOVES]
            kv_moved = torch.cat([self._windows(m) for m in moved], dim=3)  # 4·w² slots
            k_sur, v_sur = kv_moved[:, :, :, self.surrounding_index].unbind(0)
            keys.append(k_sur)
            values.append(v_sur)

        # pooled windows: (B, nh, nw, C, w²) -> (B, nh, nw, C) -> qkv -> fw x fw neighbourhood
        cells = x.reshape(B, nh, w, nw, w, C).permute(0, 1, 3, 5, 2, 4).reshape(B, nh, nw, C, w * w)
        pooled = self.pool(cells).squeeze(-1)
        kv_pooled = self.qkv(pooled)[..., C:]  # the query third is computed too, as published
        kv_pooled = kv_pooled.permute(0, 3, 1, 2)  # (B, 2C, nh, nw)
        kv_pooled = F.unfold(kv_pooled, fw, padding=fw // 2)  # (B, 2C·fw², windows)
        kv_pooled = kv_pooled.view(B, 2, heads, hd, fw * fw, nh * nw).permute(1, 0, 5, 2, 4, 3)
        k_pool, v_pool = kv_pooled.reshape(2, B, nh * nw * heads, fw * fw, hd).unbind(0)
        keys.append(k_pool)
        values.append(v_pool)

        k = torch.cat(keys, dim=2)
        v = torch.cat(values, dim=2)
        bias = self._bias(nh, nw, x.device, e).to(q.dtype)
        if self.impl == "fused":  # the faster exact kernel for this shape (kernels.py)
            out = kernels.attention(queries, k, v, self.scale, bias)
        else:
            attn = (queries * self.scale) @ k.transpose(-2, -1) + bias
            out = attn.softmax(dim=-1) @ v

        out = out.view(B, nh, nw, heads, w, w, hd).permute(0, 1, 4, 2, 5, 3, 6)
        out = self.proj(out.reshape(B, hp, wp, C))
        if hp != H or wp != W:
            out = out[:, :H, :W, :]
        return out.reshape(B, H * W, C)

    def macs(self, H: int, W: int) -> int:
        """Over the ``Np`` padded tokens and ``Nw`` windows: ``qkv`` (``3·Np·C²``), pooling
        (``Nw·C·w²``), ``qkv`` of the pooled tokens (``3·Nw·C²``, all three thirds as
        published), the two attention products over ``keys`` keys (``2·Np·keys·C``) and
        ``proj`` (``Np·C²``). Biases, masks, softmax, rolls and gathers are not counted.
        526,851,072 at dim 768, 12 heads, 14x14 (the published 526.85M)."""
        hp, wp = self._padded(H, W)
        np_, c, n = hp * wp, self.dim, self.window**2
        nwin = np_ // n
        keys = self.n_keys(H, W)
        return 4 * np_ * c * c + nwin * c * n + 3 * nwin * c * c + 2 * np_ * keys * c
