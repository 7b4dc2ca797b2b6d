"""Linformer: keys and values projected along the sequence axis, from ``N`` tokens to ``k``.

Two learned ``N x k`` matrices (one for keys, one for values, not shared) turn the ``N`` keys and
values into ``k`` each; every query then attends to those ``k``, so the attention is linear in
``N``. The matrices tie the layer to the sequence length it was built for (``seq_len``, by
default 196 = 14x14 tokens, the single-layer benchmark's map): on any other map it refuses with
a :class:`~hilobench.core.errors.ConfigError` naming that length and the ``--seq-len`` that builds
it
for the map instead. Building for another length changes the parameter count, as LITv1's
resolution-tied tables do; the learned matrices are not resized.

The published single-layer figures (2.46M params, 616.56 MMACs) are reproduced with ``k = 256``:
that is what they count (``k = 128`` gives 2.41M / 539.49M), so 256 is the default.
"""

from __future__ import annotations

import torch
from torch import nn

from hilobench.attention import kernels
from hilobench.attention.base import Attention
from hilobench.attention.msa import attend
from hilobench.attention.registry import register_attention
from hilobench.core import options
from hilobench.core.errors import ConfigError

PROJ_LEN = options.Knob(
    "proj_len",
    "int",
    "Linformer: length k the keys and values are projected to.",
    minimum=1,
    maximum=65536,
)
SEQ_LEN = options.Knob(
    "seq_len",
    "int",
    "Linformer: tokens (H*W) its learned projections are built for; other maps are refused.",
    minimum=1,
    maximum=1 << 24,
)


@register_attention(
    "linformer",
    "Linformer (keys/values projected along the sequence to k; tied to one length)",
    knobs={PROJ_LEN: 256, SEQ_LEN: 196},
)
class LinformerAttention(Attention):
    """``qkv: C -> 3C``, keys and values projected ``N -> k`` by ``proj_k`` / ``proj_v``
    (``(seq_len, k)`` each), attention of every query to the ``k`` projected keys,
    ``proj: C -> C``. The projection is shared by all heads, as in the paper's default."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        impl: str = "reference",
        proj_len: int = 256,
        seq_len: int = 196,
    ) -> None:
        super().__init__(dim, num_heads, qkv_bias, impl)
        self.proj_len = int(options.check("proj_len", proj_len))
        self.seq_len = int(options.check("seq_len", seq_len))
        self.qkv = kernels.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = kernels.Linear(dim, dim)
        bound = self.proj_len**-0.5  # Linformer's init: uniform in +-1/sqrt(k)
        self.proj_k = nn.Parameter(torch.empty(self.seq_len, self.proj_len))
        self.proj_v = nn.Parameter(torch.empty(self.seq_len, self.proj_len))
        for p in (self.proj_k, self.proj_v):
            nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, heads={self.num_heads}, proj_len={self.proj_len}, "
            f"seq_len={self.seq_len}, impl={self.impl}"
        )

    def check_tokens(self, H: int, W: int) -> None:
        """ConfigError unless the ``H x W`` map has the length the projections were built for."""
        n = H * W
        if n != self.seq_len:
            raise ConfigError(
                f"linformer was built for sequences of {self.seq_len} tokens (its learned "
                f"{self.seq_len}x{self.proj_len} key/value projections); the {H}x{W} map has {n}; "
                f"build it for this map with --seq-len {n}"
            )

    def score_elements(self, H: int, W: int) -> int:
        """Every query attends to ``k`` projected keys."""
        self.check_tokens(H, W)
        return self.num_heads * H * W * self.proj_len

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        self.check_tokens(H, W)
        B, N, C = x.shape
        heads, hd, k = self.num_heads, self.head_dim, self.proj_len
        q, keys, values = self.qkv(x).chunk(3, dim=-1)  # (B, N, C) each
        q = q.reshape(B, N, heads, hd).transpose(1, 2)
        # along the sequence: (k, N) @ (B, N, C) -> (B, k, C)
        keys = self.proj_k.t() @ keys
        values = self.proj_v.t() @ values
        keys = keys.reshape(B, k, heads, hd).transpose(1, 2)
        values = values.reshape(B, k, heads, hd).transpose(1, 2)
        out = attend(q, keys, values, self.scale, self.impl)  # (B, heads, N, hd)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))

    def macs(self, H: int, W: int) -> int:
        """``4*N*C^2 + 4*N*k*C``: qkv and proj linears, the two ``N -> k`` projections of keys
        and values, and ``q@k^T`` plus ``attn@v`` against ``k`` keys."""
        self.check_tokens(H, W)
        n, c = H * W, self.dim
        return 4 * n * c * c + 4 * n * self.proj_len * c
