"""Focal Transformer (Yang et al. 2021): Focal-Tiny, focal self-attention in every block.

Swin-T's layout: a 4×4 patch embedding with LayerNorm, four stages of widths 96/192/384/768,
depths 2/2/6/2, heads 3/6/12/24, MLP ratio 4, pre-norm blocks, no shift, no position embedding;
LayerNorm, average over tokens and a linear head at the end. Each block runs
:class:`~hilobench.attention.focal.FocalAttention` (the attention zoo's layer) at focal level 2
with "fc" pooling: its 7×7 window, the window's surroundings (expand size 3) and the pooled
windows around it, ``FOCAL_WINDOWS`` = 7/5/3/1 of them per side in stages 1–4. Between stages a
2×2 stride-2 convolution with LayerNorm halves the map and doubles the width (the authors'
downsampling; a Swin patch merging with its norm after the linear).

As in the authors' code, a stage whose map is no larger than the window on its shorter side
(stage 4 at 224: 7×7) uses one window of that side and no surroundings, so the layers, and with
them the parameter count, depend on the resolution: a model is built for one ``res`` and any
other input size raises ConfigError. Maps that are not window multiples are zero-padded inside
the attention; an odd side is zero-padded before the patch embedding and each downsampling (so
a side shrinks to ``ceil(h/2)``; the authors' unpadded conv would drop the last row instead).
"""

from __future__ import annotations

from typing import Any, Unpack

import torch
from torch import nn

from hilobench.attention.focal import FocalAttention
from hilobench.models.blocks import PatchEmbed, to_map
from hilobench.models.fixed_res import FixedResNet, FixedResOptions
from hilobench.models.registry import ModelEntry, register_model

#: Pooled windows per side that each window attends to, per stage (the authors' Focal-Tiny).
FOCAL_WINDOWS = (7, 5, 3, 1)
#: Window side, and how far the fine keys reach beyond it (focal level 1).
WINDOW, EXPAND = 7, 3


class ConvDownsample(nn.Module):
    """Tokens → map → 2×2 stride-2 conv + LayerNorm (:class:`PatchEmbed`) → tokens."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.embed = PatchEmbed(in_dim, out_dim, 2)

    def out_size(self, H: int, W: int) -> tuple[int, int]:
        return self.embed.out_size(H, W)

    def forward(self, x: torch.Tensor, H: int, W: int) -> tuple[torch.Tensor, int, int]:
        return self.embed(to_map(x, H, W))

    def macs(self, H: int, W: int) -> int:
        return self.embed.macs(H, W)


def stage_attention(
    dim: int, heads: int, hw: tuple[int, int], focal_window: int, impl: str
) -> FocalAttention:
    """The focal attention a block on an ``hw`` map gets: the full window and surroundings, or,
    where the map's shorter side fits in one window, a window of that side and no
    surroundings (as the authors' blocks do)."""
    window, expand = (min(hw), 0) if min(hw) <= WINDOW else (WINDOW, EXPAND)
    return FocalAttention(
        dim, heads, impl=impl, window=window, expand_size=expand, focal_window=focal_window
    )


class FocalTransformer(FixedResNet):
    """Focal Transformer classifier built for ``res = (H, W)`` images."""

    display = "Focal-Tiny"
    tied_by = "each stage's window and bias tables follow its map size"

    def __init__(
        self, focal_windows: tuple[int, ...] = FOCAL_WINDOWS, **options: Unpack[FixedResOptions]
    ) -> None:
        self.focal_windows = focal_windows
        super().__init__(**options)

    def attention(self, stage: int, dim: int, heads: int, hw: tuple[int, int]) -> FocalAttention:
        return stage_attention(dim, heads, hw, self.focal_windows[stage], self.impl)

    def downsample(self, in_dim: int, out_dim: int) -> ConvDownsample:
        return ConvDownsample(in_dim, out_dim)


def focal_tiny(**kwargs: Any) -> FocalTransformer:
    """Focal-Tiny with any :class:`FocalTransformer` keyword overrides."""
    return FocalTransformer(**kwargs)


def _build(
    *, res: tuple[int, int], impl: str = "reference", num_classes: int = 1000, **_: Any
) -> FocalTransformer:
    return focal_tiny(res=res, impl=impl, num_classes=num_classes)


register_model(ModelEntry("focal_tiny", "Focal-Tiny", "focal", "hilobench", _build, 224))
