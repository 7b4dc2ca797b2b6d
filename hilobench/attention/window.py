"""Swin-style window attention (W-MSA) and its shifted variant (SW-MSA).

Tokens attend only inside non-overlapping ``w x w`` windows, optionally with a learned relative
position bias. The shifted variant cyclically rolls the map by ``-shift`` first (and back by
``+shift`` afterwards) so windows straddle the previous layer's borders; a region mask stops
tokens that were not neighbours before the roll from attending to each other.

Edge cases, chosen so each one has a single clear meaning:

* A map no larger than the window (``H <= w`` **and** ``W <= w``) is one ``H x W`` window with
  no shift and no padding, so the layer is global attention plus the relative bias (the bias
  table covers every offset such a map can have). SW-MSA therefore drops its shift on such a
  map and equals W-MSA there, as Swin does when the resolution is no larger than the window.
  (Swin's classifier tests ``min(H, W) <= w`` and shrinks the window to that side; here both
  sides must fit, otherwise the map is padded and shifted as below. On square maps they agree.)
* Otherwise a map not divisible by ``w`` is zero-padded right/bottom to ``Hp x Wp``. Padded
  tokens go through ``qkv`` like real ones (their keys/values are the projection biases), are
  attended to without a mask, as Swin and LITv2 do, and their outputs are cropped away. That is
  why the MAC count uses the padded token count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hilobench.attention import kernels
from hilobench.attention.base import Attention, check_window
from hilobench.attention.registry import register_attention
from hilobench.core import options
from hilobench.core.errors import ConfigError

#: Additive logit for keys in another region of a shifted window. Swin's value: exp(-100)
#: underflows to zero in float32, and a finite value keeps bias + mask sums free of NaN.
MASK_VALUE = -100.0


def relative_position_index(wh: int, ww: int, window: int, device: torch.device) -> torch.Tensor:
    """``(wh*ww, wh*ww)`` indices into a ``(2*window-1)**2`` table, built from shapes only so it
    works on the ``meta`` device; a window smaller than ``window`` uses a subset of the table."""
    ys = torch.arange(wh, device=device).repeat_interleave(ww)
    xs = torch.arange(ww, device=device).repeat(wh)
    dy = ys[:, None] - ys[None, :] + (window - 1)
    dx = xs[:, None] - xs[None, :] + (window - 1)
    return dy * (2 * window - 1) + dx


def shift_region_mask(
    hp: int, wp: int, window: int, shift: int, device: torch.device
) -> torch.Tensor:
    """Additive ``(num_windows, w*w, w*w)`` mask for a map rolled by ``-shift``.

    Along each axis the rolled map has three regions, ``[0, L-w)``, ``[L-w, L-shift)`` and
    ``[L-shift, L)``; two tokens of one window may attend to each other only if they share a
    region on both axes. Built with tensor ops from shapes (no values read back to Python).
    """

    def regions(length: int) -> torch.Tensor:
        pos = torch.arange(length, device=device)
        return (pos >= length - window).long() + (pos >= length - shift).long()

    ids = regions(hp)[:, None] * 3 + regions(wp)[None, :]
    ids = ids.view(hp // window, window, wp // window, window).permute(0, 2, 1, 3)
    ids = ids.reshape(-1, window * window)
    differ = ids[:, :, None] != ids[:, None, :]
    return torch.zeros(differ.shape, device=device).masked_fill(differ, MASK_VALUE)


@register_attention(
    "wmsa",
    "Swin window attention (w x w windows, relative position bias)",
    knobs={"window": 7, "rel_pos": True},
)
class WindowAttention(Attention):
    """Multi-head self-attention inside non-overlapping ``window x window`` windows.

    ``qkv: C -> 3C`` and ``proj: C -> C`` act on every (padded) token; ``rel_pos`` adds a learned
    ``(2w-1)^2 x heads`` bias indexed by relative coordinates; ``shift > 0`` makes it SW-MSA.
    """

    #: the learned bias and its index buffer; both None without ``rel_pos``
    relative_position_bias_table: nn.Parameter | None
    relative_position_index: torch.Tensor | None

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        impl: str = "reference",
        window: int = 7,
        shift: int = 0,
        rel_pos: bool = True,
    ):
        super().__init__(dim, num_heads, qkv_bias, impl)
        window = check_window(window)
        if isinstance(shift, bool) or not isinstance(shift, int) or not 0 <= shift < window:
            raise ConfigError(f"shift must be an integer in [0, window={window}), got {shift!r}")
        options.check("rel_pos", rel_pos)
        self.window = window
        self.shift = shift
        self.rel_pos = rel_pos
        self.qkv = kernels.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = kernels.Linear(dim, dim)
        if rel_pos:
            table = torch.zeros((2 * window - 1) ** 2, num_heads)
            # non-zero from the start, so tests and benchmarks exercise a real bias
            self.relative_position_bias_table = nn.Parameter(nn.init.trunc_normal_(table, std=0.02))
            index = relative_position_index(window, window, window, table.device)
            # derived from the window size, so kept out of the state dict
            self.register_buffer("relative_position_index", index, persistent=False)
        else:
            self.relative_position_bias_table = None
            self.relative_position_index = None
        self._mask_cache: dict[tuple, torch.Tensor] = {}
        self._gathers: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, heads={self.num_heads}, window={self.window}, shift={self.shift}, "
            f"rel_pos={self.rel_pos}, impl={self.impl}"
        )

    def _layout(self, H: int, W: int) -> tuple[int, int, int, int, int]:
        """Window height/width, padded map size and effective shift for an ``H x W`` map."""
        w = self.window
        if H <= w and W <= w:  # the whole map is one window: global attention + bias
            return H, W, H, W, 0
        return w, w, -(-H // w) * w, -(-W // w) * w, self.shift

    def score_elements(self, H: int, W: int) -> int:
        """Every (padded) token attends inside its window."""
        wh, ww, hp, wp, _ = self._layout(H, W)
        return self.num_heads * hp * wp * wh * ww

    def _bias(self, wh: int, ww: int) -> torch.Tensor | None:
        """``(heads, n, n)`` relative position bias for a ``wh x ww`` window."""
        table = self.relative_position_bias_table
        if table is None:
            return None
        index = self.relative_position_index  # there is one with the table
        if index is None or (wh, ww) != (self.window, self.window):
            index = relative_position_index(wh, ww, self.window, table.device)
        n = wh * ww
        return table[index.reshape(-1)].view(n, n, -1).permute(2, 0, 1)

    def _shift_mask(self, hp: int, wp: int, shift: int, device: torch.device) -> torch.Tensor:
        # Cached per shape like Swin's precomputed buffer; keyed on inference mode because an
        # inference tensor must not be saved for backward in a later training step.
        key = (hp, wp, shift, str(device), torch.is_inference_mode_enabled())
        mask = self._mask_cache.get(key)
        if mask is None:
            if len(self._mask_cache) >= 8:
                self._mask_cache.clear()
            mask = shift_region_mask(hp, wp, self.window, shift, device)
            self._mask_cache[key] = mask
        return mask

    def _mask(
        self, wh: int, ww: int, hp: int, wp: int, shift: int, device: torch.device
    ) -> torch.Tensor | None:
        """The additive logits ``(windows·heads, n, n)``: position bias and shift mask."""
        nwin, heads, n = (hp // wh) * (wp // ww), self.num_heads, wh * ww
        bias = self._bias(wh, ww)  # (heads, n, n) or None
        if shift:
            region = self._shift_mask(hp, wp, shift, device)[:, None]  # (windows, 1, n, n)
            mask = region if bias is None else region + bias
            return mask.expand(nwin, heads, n, n).reshape(nwin * heads, n, n)
        if bias is not None:
            return bias.expand(nwin, heads, n, n).reshape(nwin * heads, n, n)
        return None

    def _kept_mask(
        self, wh: int, ww: int, hp: int, wp: int, shift: int, device: torch.device
    ) -> torch.Tensor | None:
        """:meth:`_mask`, kept between inference calls of the fused path while the bias table
        is unchanged (its version counter, which every in-place update and state-dict load
        bumps): the gather, sum and copy that build it took 19 ms of a 136 ms SW-MSA call at
        batch 8, 14x14, dim 768 on a CPU, the same values each call."""
        table = self.relative_position_bias_table
        version = None if table is None else (table._version, table.data_ptr())
        key = ("fused", wh, ww, hp, wp, shift, str(device), version,
               torch.is_inference_mode_enabled())  # fmt: skip
        mask = self._mask_cache.get(key)
        if mask is None:
            if len(self._mask_cache) >= 8:
                self._mask_cache.clear()
            mask = self._mask(wh, ww, hp, wp, shift, device)
            if mask is None:
                return None
            self._mask_cache[key] = mask
        return mask

    def _shift_gathers(
        self, wh: int, ww: int, hp: int, wp: int, shift: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices of the fused path's two gathers: ``into`` takes the padded tokens to their
        places on the shifted map (``torch.roll`` by ``-shift``), ``back`` takes each output
        token's head rows, ``(windows·heads·n)`` rows of ``hd``, from the attention output to
        the unshifted map. Per call they replace five copies of the map (two per roll and the
        window merge) by two, three where the kernel's output needs a copy to be read as rows;
        cached per shape."""
        # keyed on inference mode: an inference tensor must not be saved for backward
        key = ("gathers", wh, ww, hp, wp, shift, str(device), torch.is_inference_mode_enabled())
        kept = self._gathers.get(key)
        if kept is None:
            if len(self._gathers) >= 8:
                self._gathers.clear()
            grid = torch.arange(hp * wp, device=device).view(hp, wp)
            into = grid.roll((-shift, -shift), dims=(0, 1)).reshape(-1)
            src = grid.roll((shift, shift), dims=(0, 1))  # output token -> shifted position
            py, px = src // wp, src % wp
            window = (py // wh) * (wp // ww) + px // ww
            pos = (py % wh) * ww + px % ww
            heads = torch.arange(self.num_heads, device=device)
            back = (window[..., None] * self.num_heads + heads) * (wh * ww) + pos[..., None]
            kept = self._gathers[key] = (into, back.reshape(-1))
        return kept

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        B, N, C = x.shape
        wh, ww, hp, wp, shift = self._layout(H, W)
        nh, nw, n = hp // wh, wp // ww, wh * ww
        heads, hd = self.num_heads, self.head_dim

        x = x.reshape(B, H, W, C)
        if hp != H or wp != W:
            x = F.pad(x, (0, 0, 0, wp - W, 0, hp - H))
        gather = self.impl == "fused" and shift
        if gather:  # one gather of the tokens rather than one copy per rolled dimension
            into, back = self._shift_gathers(wh, ww, hp, wp, shift, x.device)
            x = x.reshape(B, hp * wp, C).index_select(1, into).view(B, hp, wp, C)
        elif shift:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))

        # (B, hp, wp, 3C) -> (3, B, windows*heads, n, hd): windows fold into the head axis, so a
        # per-window mask broadcasts over the batch without being copied B times
        qkv = self.qkv(x).view(B, nh, wh, nw, ww, 3, heads, hd)
        qkv = qkv.permute(5, 0, 1, 3, 6, 2, 4, 7).reshape(3, B, nh * nw * heads, n, hd)
        q, k, v = qkv.unbind(0)

        if self.impl == "fused" and not torch.is_grad_enabled() and not kernels.tracing():
            mask = self._kept_mask(wh, ww, hp, wp, shift, x.device)
        else:
            mask = self._mask(wh, ww, hp, wp, shift, x.device)

        if self.impl == "fused":  # the faster exact kernel for this shape (kernels.py)
            out = kernels.attention(q, k, v, self.scale, mask)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            if mask is not None:
                attn = attn + mask
            out = attn.softmax(dim=-1) @ v

        # (B, windows*heads, n, hd) -> (B, hp, wp, C)
        if gather:  # merge the windows and undo the shift in one gather (proj is per token)
            out = out.reshape(B, -1, hd).index_select(1, back).view(B, hp, wp, C)
            out = self.proj(out)
        else:
            out = out.view(B, nh, nw, heads, wh, ww, hd).permute(0, 1, 4, 2, 5, 3, 6)
            out = self.proj(out.reshape(B, hp, wp, C))
        if shift and not gather:
            out = torch.roll(out, shifts=(shift, shift), dims=(1, 2))
        if hp != H or wp != W:
            out = out[:, :H, :W, :]
        return out.reshape(B, H * W, C)

    def macs(self, H: int, W: int) -> int:
        """``4*Np*C^2 + 2*Np*n*C``: qkv and proj over the ``Np`` padded tokens, plus ``q@k^T`` and
        ``attn@v`` within windows of ``n`` tokens (``w^2``, or ``H*W`` for a map no larger than
        the window). Bias, mask, softmax and roll are not counted."""
        wh, ww, hp, wp, _ = self._layout(H, W)
        np_, c = hp * wp, self.dim
        return 4 * np_ * c * c + 2 * np_ * (wh * ww) * c


@register_attention(
    "swmsa",
    "Swin shifted window attention (shift = window // 2, region mask)",
    knobs={"window": 7, "rel_pos": True},
)
def shifted_window_attention(
    dim: int,
    num_heads: int,
    qkv_bias: bool = True,
    impl: str = "reference",
    window: int = 7,
    rel_pos: bool = True,
) -> WindowAttention:
    """SW-MSA: the shift follows the chosen window (``window // 2``) as in Swin.

    On a map no larger than the window the shift is dropped (one window, no mask), as in Swin.
    """
    window = check_window(window)
    return WindowAttention(dim, num_heads, qkv_bias, impl, window, window // 2, rel_pos)
