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

from typing import Any, Unpack

from hilobench.attention import Attention, build_attention
from hilobench.core.errors import check_choice
from hilobench.models.dtm import DTM_MODES, DeformableTokenMerging
from hilobench.models.fixed_res import FixedResNet, FixedResOptions
from hilobench.models.litv2 import CONFIGS
from hilobench.models.registry import register_model, variant


class LITv1(FixedResNet):
    """LITv1 backbone with classifier head, built for ``res = (H, W)`` images."""

    display = "LITv1"
    tied_by = "its relative position tables span the stage maps"

    def __init__(self, dtm: str = "deform", **options: Unpack[FixedResOptions]) -> None:
        check_choice("dtm", dtm, DTM_MODES)
        self.dtm = dtm
        super().__init__(**options)

    def attention(self, stage: int, dim: int, heads: int, hw: tuple[int, int]) -> Attention | None:
        if stage < 2:  # stages 1-2: MLP-only blocks
            return None
        # one window covering the whole map: global MSA + relative bias
        return build_attention("wmsa", dim, heads, impl=self.impl, window=max(hw), rel_pos=True)

    def downsample(self, in_dim: int, out_dim: int) -> DeformableTokenMerging:
        return DeformableTokenMerging(in_dim, out_dim, self.dtm)


def litv1(size: str, **kwargs: Any) -> LITv1:
    """LITv1-S/M/B (``size`` in s, m, b) with any :class:`LITv1` keyword overrides."""
    check_choice("LITv1 size", size, tuple(CONFIGS))
    return LITv1(**CONFIGS[size], **kwargs)


register_model(variant("litv1_s", "LITv1-S", "litv1", litv1, "s", ("dtm",)))
register_model(variant("litv1_m", "LITv1-M", "litv1", litv1, "m", ("dtm",)))
register_model(variant("litv1_b", "LITv1-B", "litv1", litv1, "b", ("dtm",)))
