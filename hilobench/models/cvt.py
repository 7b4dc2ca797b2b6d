"""CvT (Convolutional vision Transformer, Wu et al. 2021): CvT-13.

Three stages, each opened by a convolutional token embedding (7×7 stride 4 padding 2, then
3×3 stride 2 padding 1 twice) with LayerNorm; widths 64/192/384, depths 1/2/10, heads 1/3/6,
MLP ratio 4 with QuickGELU (``x·sigmoid(1.702x)``, the authors' activation). Attention uses a
*convolutional projection*: queries, keys and values each come from a depthwise 3×3 conv plus
BatchNorm on the token map, then a linear (with bias); keys and values use stride 2, so each
query attends to a quarter of the tokens. There is no position embedding; a class token joins
the tokens in the last stage only (it skips the convolutions and goes straight to the linears),
and the head reads it through LayerNorm and a linear.

As published, the attention logits are scaled by ``dim**-0.5`` (the stage width), not by the
head width. Nothing depends on the input size, so one set of weights runs at any resolution of
at least 3 pixels a side (the stride-4 embedding's smallest input); strided convolutions round
down as in the authors' code. (Training at batch 1 needs a side of at least 35 pixels: below
that the last stage's keys are one token, and BatchNorm cannot take batch statistics of one
value; torch says so in the row's message.)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hilobench.attention.base import Attention
from hilobench.core.errors import ConfigError
from hilobench.models.blocks import (
    BATCHNORM_MACS,
    LAYERNORM_MACS,
    Mlp,
    init_weights,
    members,
    to_map,
    to_tokens,
)
from hilobench.models.registry import ModelEntry, register_model

#: CvT-13: (kernel, stride, padding) of each stage's token embedding, widths, depths, heads.
EMBEDS = ((7, 4, 2), (3, 2, 1), (3, 2, 1))
DIMS, DEPTHS, HEADS = (64, 192, 384), (1, 2, 10), (1, 3, 6)
#: The smallest image side: the first embedding (7×7, padding 2) needs 3 pixels.
MIN_SIDE = 3


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output side of a convolution (rounding down, as torch does)."""
    return (size + 2 * padding - kernel) // stride + 1


def check_side(H: int, W: int) -> None:
    """Raise ConfigError for an image too small for the first token embedding."""
    if min(H, W) < MIN_SIDE:
        raise ConfigError(
            f"{H}x{W} is too small for CvT: each side needs at least {MIN_SIDE} pixels "
            "(its first 7x7 stride-4 token embedding pads by 2)"
        )


class QuickGELU(nn.Module):
    """``x·sigmoid(1.702x)``: the GELU approximation the authors' CvT uses."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ConvEmbed(nn.Module):
    """Overlapping strided conv, then LayerNorm over channels: map in, tokens out."""

    def __init__(self, in_chans: int, dim: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__()
        self.in_chans, self.dim = in_chans, dim
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.proj = nn.Conv2d(in_chans, dim, kernel, stride=stride, padding=padding)
        self.norm = nn.LayerNorm(dim)

    def out_size(self, H: int, W: int) -> tuple[int, int]:
        k, s, p = self.kernel, self.stride, self.padding
        return conv_out(H, k, s, p), conv_out(W, k, s, p)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)
        h, w = x.shape[-2:]
        return self.norm(to_tokens(x)), h, w

    def macs(self, H: int, W: int) -> int:
        h, w = self.out_size(H, W)
        return h * w * self.dim * (self.in_chans * self.kernel**2 + LAYERNORM_MACS)


def dw_bn(dim: int, stride: int) -> nn.Sequential:
    """Depthwise 3×3 conv (no bias) + BatchNorm: the convolutional projection's first half."""
    conv = nn.Conv2d(dim, dim, 3, stride=stride, padding=1, groups=dim, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(dim))


class ConvProjectionAttention(Attention):
    """Multi-head attention whose q, k, v come from depthwise conv + BatchNorm + linear.

    ``forward(x, H, W)`` takes ``(B, cls + H*W, C)`` tokens, ``cls`` (0 or 1) class tokens
    first; the class token bypasses the convolutions. Keys/values are the stride-``stride_kv``
    map, ``ceil(H/2) × ceil(W/2)`` tokens for the published stride 2.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        impl: str = "reference",
        cls_token: bool = False,
        stride_kv: int = 2,
    ) -> None:
        super().__init__(dim, num_heads, qkv_bias, impl)
        self.cls = int(cls_token)
        self.stride_kv = stride_kv
        self.scale = dim**-0.5  # as published: the stage width, not the head width
        self.conv_q = dw_bn(dim, 1)
        self.conv_k = dw_bn(dim, stride_kv)
        self.conv_v = dw_bn(dim, stride_kv)
        self.proj_q = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj_k = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj_v = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def kv_size(self, H: int, W: int) -> tuple[int, int]:
        return conv_out(H, 3, self.stride_kv, 1), conv_out(W, 3, self.stride_kv, 1)

    def score_elements(self, H: int, W: int) -> int:
        hk, wk = self.kv_size(H, W)
        return self.num_heads * (H * W + self.cls) * (hk * wk + self.cls)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        B, N, _ = t.shape
        return t.view(B, N, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        B, N, C = x.shape
        cls, tokens = x.split([self.cls, H * W], dim=1)
        m = to_map(tokens, H, W)
        q, k, v = (
            self._heads(proj(torch.cat([cls, to_tokens(conv(m))], dim=1)))
            for conv, proj in (
                (self.conv_q, self.proj_q),
                (self.conv_k, self.proj_k),
                (self.conv_v, self.proj_v),
            )
        )
        if self.impl == "fused":
            out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            out = attn.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(B, N, C))

    def macs(self, H: int, W: int) -> int:
        """Depthwise convs (9 per output element) and eval-mode BatchNorm on the ``H·W`` query
        map and the two ``hk·wk`` key/value maps; the q, k, v and output linears over
        ``nq = H·W + cls`` and ``nk = hk·wk + cls`` tokens; the two attention products."""
        hk, wk = self.kv_size(H, W)
        c = self.dim
        conv = (H * W + 2 * hk * wk) * c * (9 + BATCHNORM_MACS)
        nq, nk = H * W + self.cls, hk * wk + self.cls
        return conv + (2 * nq + 2 * nk) * c * c + 2 * nq * nk * c


class CvTBlock(nn.Module):
    """Pre-norm block ``x + attn(LN(x))``, then ``x + mlp(LN(x))``, on ``cls + H·W`` tokens."""

    def __init__(self, dim: int, heads: int, cls_token: bool, impl: str) -> None:
        super().__init__()
        self.dim, self.cls = dim, int(cls_token)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ConvProjectionAttention(dim, heads, impl=impl, cls_token=cls_token)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim, act=QuickGELU)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), H, W)
        return x + self.mlp(self.norm2(x), H, W)

    def macs(self, H: int, W: int) -> int:
        n = H * W + self.cls
        return 2 * LAYERNORM_MACS * n * self.dim + self.attn.macs(H, W) + self.mlp.macs(1, n)


class CvT(nn.Module):
    """CvT classifier; any input of at least ``MIN_SIDE`` pixels a side."""

    def __init__(
        self,
        dims: tuple[int, ...] = DIMS,
        depths: tuple[int, ...] = DEPTHS,
        num_heads: tuple[int, ...] = HEADS,
        embeds: tuple[tuple[int, int, int], ...] = EMBEDS,
        num_classes: int = 1000,
        in_chans: int = 3,
        impl: str = "reference",
    ) -> None:
        super().__init__()
        self.dims, self.num_classes = list(dims), num_classes
        last = len(dims) - 1
        self.embeds = nn.ModuleList(
            ConvEmbed(dims[i - 1] if i else in_chans, dim, *embeds[i]) for i, dim in enumerate(dims)
        )
        self.stages = nn.ModuleList(
            nn.ModuleList(CvTBlock(dim, heads, i == last, impl) for _ in range(depth))
            for i, (dim, depth, heads) in enumerate(zip(dims, depths, num_heads, strict=True))
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dims[-1]))
        self.norm = nn.LayerNorm(dims[-1])
        self.head = nn.Linear(dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.apply(init_weights)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def check_size(self, H: int, W: int) -> None:
        check_side(H, W)

    def stage_sizes(self, H: int, W: int) -> list[tuple[int, int]]:
        """Token map ``(h, w)`` of each stage for an ``H×W`` image (no computation)."""
        self.check_size(H, W)
        sizes = []
        for embed in members(self.embeds, ConvEmbed):
            H, W = embed.out_size(H, W)
            sizes.append((H, W))
        return sizes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_size(*x.shape[-2:])
        last = len(self.stages) - 1
        stages = members(self.stages, nn.ModuleList)
        for i, (embed, blocks) in enumerate(zip(self.embeds, stages, strict=True)):
            x, H, W = embed(x)
            if i == last:
                x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
            for block in members(blocks, CvTBlock):
                x = block(x, H, W)
            if i < last:
                x = to_map(x, H, W)
        return self.head(self.norm(x[:, 0]))

    def macs(self, H: int, W: int) -> int:
        """Analytic MACs of one image, in the convention of :mod:`hilobench.models.blocks`
        (the head's LayerNorm sees the class token only)."""
        self.check_size(H, W)
        total = 0
        stages = members(self.stages, nn.ModuleList)
        for embed, blocks in zip(members(self.embeds, ConvEmbed), stages, strict=True):
            total += embed.macs(H, W)
            H, W = embed.out_size(H, W)
            total += sum(block.macs(H, W) for block in members(blocks, CvTBlock))
        dim = self.dims[-1]
        return total + LAYERNORM_MACS * dim + dim * self.num_classes


def _build(
    *, res: tuple[int, int], impl: str = "reference", num_classes: int = 1000, **_: Any
) -> CvT:
    check_side(*res)  # before building: the model itself takes any larger size
    return CvT(impl=impl, num_classes=num_classes)


register_model(ModelEntry("cvt_13", "CvT-13", "cvt", "hilobench", _build, 224))
