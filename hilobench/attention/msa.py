"""Global multi-head self-attention (ViT MSA): the baseline other layers are measured against."""

from __future__ import annotations

import torch

from hilobench.attention import kernels
from hilobench.attention.base import Attention
from hilobench.attention.registry import register_attention


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, impl: str
) -> torch.Tensor:
    """Scaled dot-product attention over the last two dims, by the chosen implementation.

    ``reference`` spells out ``softmax(q @ kᵀ · scale) @ v`` as the papers publish it; ``fused``
    runs the same computation by the faster exact kernel for the shape and device
    (``scaled_dot_product_attention`` or those matmuls, :mod:`hilobench.attention.kernels`).
    Shapes: ``(..., Lq, d)``, ``(..., Lk, d)``.
    """
    if impl == "fused":  # the faster exact kernel for this shape (kernels.py)
        return kernels.attention(q, k, v, scale)
    attn = (q @ k.transpose(-2, -1)) * scale
    attn = attn.softmax(dim=-1)
    return attn @ v


@register_attention("msa", "global multi-head self-attention (ViT)")
class MultiHeadSelfAttention(Attention):
    """Every token attends to every token: ``qkv: C→3C``, attention, ``proj: C→C``.

    The ``qkv`` output is laid out as ``(3, heads, head_dim)`` so its rows are
    ``[q; k; v]``, which lets weights from layers with separate q / kv linears be copied in.
    """

    def __init__(
        self, dim: int, num_heads: int, qkv_bias: bool = True, impl: str = "reference"
    ) -> None:
        super().__init__(dim, num_heads, qkv_bias, impl)
        self.qkv = kernels.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = kernels.Linear(dim, dim)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        out = attend(q, k, v, self.scale, self.impl)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))

    def macs(self, H: int, W: int) -> int:
        """``4·N·C² + 2·N²·C``: qkv and proj linears plus the two attention matmuls."""
        n, c = H * W, self.dim
        return 4 * n * c * c + 2 * n * n * c
