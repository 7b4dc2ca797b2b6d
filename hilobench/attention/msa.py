"""Global multi-head self-attention (ViT MSA): the baseline other layers are measured against."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hilobench.attention.base import Attention
from hilobench.attention.registry import register_attention


def sdpa(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float,
    attn_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``scaled_dot_product_attention`` over the last two dims of any rank: other than 4-D, the
    leading dims are folded into the batch (the same arithmetic), the form every exporter
    takes (ONNX's has no SDPA of another rank). ``attn_mask`` broadcasts against the scores."""
    if q.dim() == 4:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=scale)
    lead = q.shape[:-2]
    if attn_mask is not None:
        attn_mask = attn_mask.expand(*lead, q.shape[-2], k.shape[-2]).reshape(
            -1, 1, q.shape[-2], k.shape[-2]
        )
    out = F.scaled_dot_product_attention(
        q.reshape(-1, 1, *q.shape[-2:]),
        k.reshape(-1, 1, *k.shape[-2:]),
        v.reshape(-1, 1, *v.shape[-2:]),
        attn_mask=attn_mask,
        scale=scale,
    )
    return out.reshape(*lead, *out.shape[-2:])


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, impl: str
) -> torch.Tensor:
    """Scaled dot-product attention over the last two dims, by the chosen implementation.

    ``reference`` spells out ``softmax(q @ kᵀ · scale) @ v`` as the papers publish it; ``fused``
    hands the same computation to ``scaled_dot_product_attention`` (:func:`sdpa`) so the two can
    be timed against each other with identical inputs. Shapes: ``(..., Lq, d)``, ``(..., Lk, d)``.
    """
    if impl == "fused":
        return sdpa(q, k, v, scale)
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
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

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
