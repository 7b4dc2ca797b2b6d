"""Cross-shaped window attention (CSWin) with locally-enhanced positional encoding (LePE).

The channels (and heads) are split in two halves after one ``qkv: C -> 3C`` linear: the first
half attends inside vertical stripes (full height, ``split_size`` columns wide), the second
inside horizontal stripes (full width, ``split_size`` rows high). Each half adds LePE, a
depthwise 3x3 convolution of its values taken stripe by stripe (zero-padded at the stripe's
borders, as CSWin does), to its attention output; the halves are concatenated and go through
``proj: C -> C``.

Edge cases:

* A stripe is never wider than the map: on a side shorter than ``split_size`` the stripe covers
  that whole side (CSWin's ``min``), so no padding is needed there.
* Otherwise a side that is not a multiple of the stripe width is zero-padded right (vertical
  stripes) or bottom (horizontal stripes), per half, after the ``qkv`` linear, as CSWin's
  dense-prediction code pads its q/k/v; the padded keys (zeros) are attended to without a mask,
  their outputs cropped away. The attention and LePE MACs therefore use the padded token count,
  the linears the real one.
"""

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

SPLIT_SIZE = options.Knob(
    "split_size",
    "int",
    "CSWin: stripe width (tokens) of its horizontal and vertical stripes.",
    minimum=1,
    maximum=65536,
)

#: The LePE kernel size (CSWin: 3x3 depthwise).
LEPE_KERNEL = 3


def _stripe_layout(length: int, across: int, split: int) -> tuple[int, int]:
    """Stripe width and padded extent across the stripes, for stripes of full ``length``."""
    s = min(split, across)
    return s, -(-across // s) * s


@register_attention(
    "cswin",
    "CSWin cross-shaped window attention (horizontal + vertical stripes, LePE)",
    knobs={SPLIT_SIZE: 7},
)
class CrossWindowAttention(Attention):
    """Half the heads in vertical, half in horizontal stripes of width ``split_size``, plus LePE.

    Needs an even number of heads (two branches of ``heads / 2``, ``dim / 2`` each).
    ``lepe.weight`` holds both branches' depthwise kernels, vertical-stripe channels first.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        impl: str = "reference",
        split_size: int = 7,
    ) -> None:
        super().__init__(dim, num_heads, qkv_bias, impl)
        self.split_size = int(options.check("split_size", split_size))
        if num_heads % 2:
            raise ConfigError(
                f"cswin splits its heads into two stripe directions; heads={num_heads} is odd"
            )
        self.branch_heads = num_heads // 2
        self.branch_dim = dim // 2
        self.qkv = kernels.Linear(dim, 3 * dim, bias=qkv_bias)
        # one depthwise conv per branch, kept as one module: channels [vertical | horizontal]
        self.lepe = nn.Conv2d(
            dim, dim, LEPE_KERNEL, padding=LEPE_KERNEL // 2, groups=dim, bias=True
        )
        self.proj = kernels.Linear(dim, dim)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, heads={self.num_heads}, split_size={self.split_size}, "
            f"impl={self.impl}"
        )

    def _branches(self, H: int, W: int) -> list[tuple[int, int, int]]:
        """Per branch: stripe length, stripe width, padded extent across (vertical, horizontal)."""
        out = []
        for length, across in ((H, W), (W, H)):
            s, padded = _stripe_layout(length, across, self.split_size)
            out.append((length, s, padded))
        return out

    def score_elements(self, H: int, W: int) -> int:
        """Each half's (padded) tokens attend inside their stripe of ``length x s`` tokens."""
        return sum(
            self.branch_heads * length * padded * length * s
            for length, s, padded in self._branches(H, W)
        )

    def _stripes(
        self, t: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        """Attention in vertical stripes of ``t``: ``(B, L, M, 3, c)`` -> ``(B, L, M, c)``.

        Stripes span the whole ``L`` axis and are ``s`` wide along ``M``; the horizontal branch
        calls this on the transposed map (with the transposed kernel).
        """
        B, L, M, _, c = t.shape
        s, mp = _stripe_layout(L, M, self.split_size)
        if mp != M:
            t = F.pad(t, (0, 0, 0, 0, 0, mp - M))
        ns, heads, hd = mp // s, self.branch_heads, self.head_dim
        n = L * s

        # (B, L, ns, s, 3, heads, hd) -> (3, B*ns, heads, L*s, hd)
        qkv = t.reshape(B, L, ns, s, 3, heads, hd).permute(4, 0, 2, 5, 1, 3, 6)
        q, k, v = qkv.reshape(3, B * ns, heads, n, hd).unbind(0)

        # LePE: depthwise conv of each stripe's values as a (c, L, s) image
        v_img = t[..., 2, :].reshape(B, L, ns, s, c).permute(0, 2, 4, 1, 3).reshape(B * ns, c, L, s)
        lepe = F.conv2d(v_img, weight, bias, padding=LEPE_KERNEL // 2, groups=c)
        lepe = lepe.reshape(B * ns, heads, hd, n).transpose(-2, -1)

        out = attend(q, k, v, self.scale, self.impl) + lepe  # (B*ns, heads, n, hd)
        out = out.reshape(B, ns, heads, L, s, hd).permute(0, 3, 1, 4, 2, 5).reshape(B, L, mp, c)
        return out[:, :, :M] if mp != M else out

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        B, N, C = x.shape
        c = self.branch_dim
        qkv = self.qkv(x).view(B, H, W, 3, C)
        w, b = self.lepe.weight, self.lepe.bias
        bv = b[:c] if b is not None else None
        bh = b[c:] if b is not None else None
        vertical = self._stripes(qkv[..., :c], w[:c], bv)
        # horizontal stripes: vertical ones of the transposed map, with the transposed kernel
        horizontal = self._stripes(
            qkv[..., c:].transpose(1, 2), w[c:].transpose(-2, -1), bh
        ).transpose(1, 2)
        out = torch.cat([vertical, horizontal], dim=-1)
        return self.proj(out.reshape(B, N, C))

    def macs(self, H: int, W: int) -> int:
        """``4*N*C^2`` (qkv, proj) plus, per half of ``C/2`` channels, ``2*Np*n*C/2`` for
        ``q@k^T`` and ``attn@v`` (``Np`` padded tokens, ``n`` tokens per stripe) and ``9*Np*C/2``
        for the LePE depthwise conv. Softmax, scaling and the LePE add are not counted."""
        n_tok, c = H * W, self.dim
        total = 4 * n_tok * c * c
        for length, s, padded in self._branches(H, W):
            np_ = length * padded
            total += 2 * np_ * (length * s) * self.branch_dim
            total += np_ * self.branch_dim * LEPE_KERNEL * LEPE_KERNEL
        return total
