"""HiLo attention (LITv2): heads split into local Hi-Fi windows and global Lo-Fi pooled attention.

Hi-Fi heads capture high-frequency detail by attending inside each non-overlapping ``s×s``
window; Lo-Fi heads capture low-frequency structure by letting every query attend to keys and
values computed from the ``s×s`` average-pooled input. Outputs are concatenated, Hi-Fi first.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from hilobench.attention import kernels
from hilobench.attention.base import Attention, check_window
from hilobench.attention.msa import attend
from hilobench.attention.registry import register_attention
from hilobench.core import options


def check_alpha(alpha: object) -> float:
    """Validate the Lo-Fi head fraction (the ``alpha`` knob's check); return it as float."""
    return float(options.check("alpha", alpha))


def lofi_heads(num_heads: int, alpha: float) -> int:
    """``int(num_heads·alpha)``, exactly as the official LITv2 code splits the heads.

    Plain truncation, float error included (``100 * 0.29 = 28.999…`` gives 28), so that every
    head count, parameter count and MAC figure matches the official models.
    """
    return int(num_heads * alpha)


@register_attention(
    "hilo",
    "HiLo attention (LITv2): Hi-Fi window heads + Lo-Fi pooled global heads",
    knobs={"window": 2, "alpha": 0.9},
)
class HiLo(Attention):
    """HiLo attention with window size ``window`` (the paper's ``s``) and Lo-Fi fraction ``alpha``.

    ``l_heads = int(num_heads·alpha)`` heads are Lo-Fi, the rest Hi-Fi. ``window=1`` is plain
    global MSA (all heads Lo-Fi, no pooling, ``alpha`` ignored); ``alpha=0`` leaves only Hi-Fi
    (window attention), ``alpha=1`` only Lo-Fi. A branch with no heads has no parameters.

    Maps whose sides are not multiples of ``window`` are zero-padded right/bottom before both
    branches, attended at the padded size, and cropped back, as the official dense-prediction
    HiLo does: Hi-Fi windows tile the padded map and Lo-Fi pools it to
    ``ceil(H/s) × ceil(W/s)`` keys/values (a border row is averaged with zeros, not dropped).
    """

    #: What ``hilobench profile`` calls each child's share of the time and MACs.
    profile_parts: ClassVar[dict[str, str]] = {
        "h_qkv": "Hi-Fi qkv",
        "h_attn": "Hi-Fi attention",
        "l_pool": "Lo-Fi pooling",
        "l_q": "Lo-Fi q/kv",
        "l_kv": "Lo-Fi q/kv",
        "l_attn": "Lo-Fi attention",
        "h_proj": "projections",
        "l_proj": "projections",
    }

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        impl: str = "reference",
        window: int = 2,
        alpha: float = 0.9,
    ) -> None:
        super().__init__(dim, num_heads, qkv_bias, impl)
        self.window = check_window(window)
        self.alpha = check_alpha(alpha)
        self.l_heads = num_heads if self.window == 1 else lofi_heads(num_heads, self.alpha)
        self.h_heads = num_heads - self.l_heads
        self.l_dim = self.l_heads * self.head_dim
        self.h_dim = self.h_heads * self.head_dim
        if self.h_heads:
            self.h_qkv = kernels.Linear(dim, 3 * self.h_dim, bias=qkv_bias)
            self.h_attn = WindowAttend()
            self.h_proj = kernels.Linear(self.h_dim, self.h_dim)
        if self.l_heads:
            self.l_q = kernels.Linear(dim, self.l_dim, bias=qkv_bias)
            if self.window > 1:
                self.l_pool = PoolTokens()
            self.l_kv = kernels.Linear(dim, 2 * self.l_dim, bias=qkv_bias)
            self.l_attn = PooledAttend()
            self.l_proj = kernels.Linear(self.l_dim, self.l_dim)

    def _hifi(self, x: torch.Tensor) -> torch.Tensor:
        """Attention inside each ``s×s`` window; ``x`` is ``(B, Hp, Wp, C)``, sides divisible."""
        out = self.h_attn(
            self.h_qkv(x), self.window, self.h_heads, self.head_dim, self.scale, self.impl
        )
        return self.h_proj(out)

    def _lofi(self, x: torch.Tensor) -> torch.Tensor:
        """Every query attends to keys/values of the ``s×s`` average-pooled map."""
        B, Hp, Wp, C = x.shape
        tokens = x.reshape(B, Hp * Wp, C)
        kv_in = self.l_pool(x, self.window) if self.window > 1 else tokens
        out = self.l_attn(
            self.l_q(tokens), self.l_kv(kv_in), self.l_heads, self.head_dim, self.scale, self.impl
        )
        return self.l_proj(out.reshape(B, Hp, Wp, self.l_dim))

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        B, N, C = x.shape
        x = x.reshape(B, H, W, C)
        s = self.window
        pad_h, pad_w = (-H) % s, (-W) % s
        if pad_h or pad_w:
            x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        outs = []
        if self.h_heads:
            outs.append(self._hifi(x))
        if self.l_heads:
            outs.append(self._lofi(x))
        out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)
        if pad_h or pad_w:
            out = out[:, :H, :W, :]
        return out.reshape(B, N, C)

    def score_elements(self, H: int, W: int) -> int:
        """Hi-Fi: ``s² x s²`` per window and head; Lo-Fi: every padded token x the pooled map."""
        s = self.window
        n = -(-H // s) * s * (-(-W // s) * s)
        g = n // (s * s)
        return self.h_heads * g * (s * s) ** 2 + self.l_heads * n * g

    def macs(self, H: int, W: int) -> int:
        """The paper's count on the padded map (softmax, scaling, pooling, biases excluded).

        With ``Np`` padded tokens and ``G`` windows: Hi-Fi
        ``Np·dim·3h_dim + G·(s²)²·2h_dim + Np·h_dim²``; Lo-Fi
        ``Np·dim·l_dim + G·dim·2l_dim + Np·l_dim·G·2 + Np·l_dim²``.
        """
        s, c, hdim, ldim = self.window, self.dim, self.h_dim, self.l_dim
        hp, wp = -(-H // s) * s, -(-W // s) * s
        n, g = hp * wp, (hp // s) * (wp // s)
        hifi = n * c * 3 * hdim + g * (s * s) ** 2 * 2 * hdim + n * hdim * hdim
        lofi = n * c * ldim + g * c * 2 * ldim + n * ldim * g * 2 + n * ldim * ldim
        return hifi + lofi


# The steps of a HiLo forward that have no parameters are parameter-free child modules rather
# than inline code, so that per-module tools (``hilobench profile``'s module timer, the traced
# count's per-module MACs) can name them. They compute exactly what the inline code did; each
# costs one module call (microseconds).


class WindowAttend(nn.Module):
    """Hi-Fi attention: split a ``(B, Hp, Wp, 3·heads·hd)`` qkv map into ``s×s`` windows, attend
    inside each, and merge the windows back to ``(B, Hp, Wp, heads·hd)``."""

    def forward(
        self, qkv: torch.Tensor, s: int, nh: int, hd: int, scale: float, impl: str
    ) -> torch.Tensor:
        B, Hp, Wp, _ = qkv.shape
        hg, wg = Hp // s, Wp // s
        qkv = qkv.reshape(B, hg, s, wg, s, 3, nh, hd)
        # -> (3, B, windows, heads, s*s, head_dim)
        qkv = qkv.permute(5, 0, 1, 3, 6, 2, 4, 7).reshape(3, B, hg * wg, nh, s * s, hd)
        q, k, v = qkv.unbind(0)
        out = attend(q, k, v, scale, impl)
        out = out.reshape(B, hg, wg, nh, s, s, hd).permute(0, 1, 4, 2, 5, 3, 6)
        return out.reshape(B, Hp, Wp, nh * hd)


class PoolTokens(nn.Module):
    """Lo-Fi pooling: ``s×s`` average pooling of a ``(B, Hp, Wp, C)`` map, as tokens."""

    def forward(self, x: torch.Tensor, s: int) -> torch.Tensor:
        pooled = F.avg_pool2d(x.permute(0, 3, 1, 2), s, s)
        return pooled.flatten(2).transpose(1, 2)


class PooledAttend(nn.Module):
    """Lo-Fi attention: every query token attends to the pooled keys and values; ``q`` is
    ``(B, N, heads·hd)``, ``kv`` is ``(B, M, 2·heads·hd)``; returns ``(B, N, heads·hd)``."""

    def forward(
        self, q: torch.Tensor, kv: torch.Tensor, nh: int, hd: int, scale: float, impl: str
    ) -> torch.Tensor:
        B, N, _ = q.shape
        qh = q.reshape(B, N, nh, hd).transpose(1, 2)
        k, v = kv.reshape(B, -1, 2, nh, hd).permute(2, 0, 3, 1, 4).unbind(0)
        out = attend(qh, k, v, scale, impl)
        return out.transpose(1, 2).reshape(B, N, nh * hd)
