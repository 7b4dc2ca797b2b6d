"""LITv1 (Less is More: Pay Less Attention in Vision Transformers): LITv1-S/M/B.

Same skeleton and widths as LITv2 (patch embedding, deformable token merging between stages),
but stages 1–2 hold plain-MLP blocks with no attention and stages 3–4 use global multi-head
self-attention with a learned relative position bias whose table spans the whole stage map,
``(2h-1)·(2w-1)`` offsets per head. The FFN is a plain MLP (no depthwise conv).

Because that table is sized to the stage map, a LITv1 model is tied to the resolution it was
built for: it is built for the requested ``res`` (so parameter counts grow with it) and any other
input size raises ConfigError rather than silently changing the attention. The global attention
is a :class:`~hilobench.attention.window.WindowAttention` whose single window covers the map
(window = the map's longer side), which is exactly global MSA plus the bias. Sizes not divisible
by 32 are handled as in LITv2: the patch embedding pads, token merging rounds down.
"""

from __future__ import annotations

from typing import Any

from hilobench.attention import build_attention
from hilobench.core.errors import ConfigError, check_choice
from hilobench.models.blocks import (
    Block,
    ClassifierHead,
    HierarchicalNet,
    Mlp,
    PatchEmbed,
    Stage,
)
from hilobench.models.dtm import DTM_MODES, DeformableTokenMerging
from hilobench.models.litv2 import CONFIGS
from hilobench.models.registry import register_model, variant


class LITv1(HierarchicalNet):
    """LITv1 backbone with classifier head, built for ``res = (H, W)`` images."""

    def __init__(
        self,
        res: tuple[int, int] = (224, 224),
        embed_dim: int = 96,
        depths: tuple[int, ...] = (2, 2, 6, 2),
        num_heads: tuple[int, ...] = (3, 6, 12, 24),
        mlp_ratio: int = 4,
        num_classes: int = 1000,
        in_chans: int = 3,
        dtm: str = "deform",
        impl: str = "reference",
    ) -> None:
        check_choice("dtm", dtm, DTM_MODES)
        self.res = (int(res[0]), int(res[1]))
        patch_embed = PatchEmbed(in_chans, embed_dim, 4)
        dims = [embed_dim * 2**i for i in range(len(depths))]
        h, w = patch_embed.out_size(*self.res)
        stages = []
        for i, (dim, depth, heads) in enumerate(zip(dims, depths, num_heads, strict=True)):
            down = DeformableTokenMerging(dims[i - 1], dim, dtm) if i else None
            if down is not None:
                h, w = down.out_size(h, w)
            blocks = []
            for _ in range(depth):
                attn = None
                if i >= 2:  # one window covering the whole map: global MSA + relative bias
                    attn = build_attention(
                        "wmsa", dim, heads, impl=impl, window=max(h, w), rel_pos=True
                    )
                blocks.append(Block(dim, attn, Mlp(dim, mlp_ratio * dim)))
            stages.append(Stage(blocks, down))
        super().__init__(patch_embed, stages, ClassifierHead(dims[-1], num_classes))
        self.dims, self.dtm = dims, dtm

    def check_size(self, H: int, W: int) -> None:
        if (int(H), int(W)) != self.res:
            raise ConfigError(
                f"LITv1 was built for {self.res[0]}x{self.res[1]} images (its relative position "
                f"tables span the stage maps) and cannot take {H}x{W}; build it for that size"
            )


def litv1(size: str, **kwargs: Any) -> LITv1:
    """LITv1-S/M/B (``size`` in s, m, b) with any :class:`LITv1` keyword overrides."""
    check_choice("LITv1 size", size, tuple(CONFIGS))
    return LITv1(**CONFIGS[size], **kwargs)


register_model(variant("litv1_s", "LITv1-S", "litv1", litv1, "s", ("dtm",)))
register_model(variant("litv1_m", "LITv1-M", "litv1", litv1, "m", ("dtm",)))
register_model(variant("litv1_b", "LITv1-B", "litv1", litv1, "b", ("dtm",)))
