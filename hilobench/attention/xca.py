"""Cross-covariance attention (XCiT): heads attend over channels, not tokens.

Per head, queries and keys are L2-normalised along the tokens and the ``d_h × d_h``
cross-covariance ``Q̂ K̂ᵀ``, times a learned per-head temperature, goes through a softmax and
mixes the channels of ``V``. The cost is linear in the number of tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hilobench.attention import kernels
from hilobench.attention.base import Attention
from hilobench.attention.registry import register_attention


@register_attention("xca", "cross-covariance attention over channels (XCiT)")
class CrossCovarianceAttention(Attention):
    """``qkv: C→3C``, channel attention per head, ``proj: C→C``; a temperature per head.

    With per-head ``(d_h, N)`` matrices ``Q, K, V`` (rows L2-normalised along the ``N``
    tokens): ``softmax(τ_h · Q̂ K̂ᵀ) V``. Any token map works; ``H`` and ``W`` only fix ``N``.

    ``reference`` spells the two matmuls and the softmax out; ``fused`` hands the same
    computation to the faster exact kernel for the shape (:mod:`hilobench.attention.kernels`),
    with the ``d_h`` channels as the sequence (query and key length ``d_h``, feature size
    ``N``), the temperature folded into ``Q̂`` and a unit scale. The normalisation runs
    identically on both paths.
    """

    #: The fused path is a separate kernel choice (kernels.attention), not the reference.
    fused_is_reference: bool = False

    def __init__(
        self, dim: int, num_heads: int, qkv_bias: bool = True, impl: str = "reference"
    ) -> None:
        super().__init__(dim, num_heads, qkv_bias, impl)
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = kernels.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = kernels.Linear(dim, dim)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        B, N, C = x.shape
        # -> (3, B, heads, head_dim, N): each head's channels as rows over the tokens
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 4, 1)
        q, k, v = qkv.unbind(0)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        if self.impl == "fused":
            out = kernels.attention(q * self.temperature, k, v, 1.0)
        else:
            attn = (q @ k.transpose(-2, -1)) * self.temperature
            out = attn.softmax(dim=-1) @ v
        # (B, heads, head_dim, N) -> (B, N, heads·head_dim)
        return self.proj(out.permute(0, 3, 1, 2).reshape(B, N, C))

    def score_elements(self, H: int, W: int) -> int:
        """One ``d_h × d_h`` cross-covariance matrix per head, whatever the map size."""
        return self.num_heads * self.head_dim * self.head_dim

    def macs(self, H: int, W: int) -> int:
        """``4·N·C² + 2·N·d_h·C``: qkv and proj linears plus the two channel-attention matmuls.

        The L2 normalisation, temperature, softmax and biases are not counted (fvcore has no
        handle for them), which gives the published 481.69M at dim 768, 12 heads, 14×14.
        """
        n, c = H * W, self.dim
        return 4 * n * c * c + 2 * n * self.head_dim * c
