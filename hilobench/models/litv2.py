"""LITv2 (Fast Vision Transformers with HiLo Attention): LITv2-S/M/B.

Four stages at strides 4/8/16/32 with widths ``embed·2^i``. Stages 1–2 hold ConvFFN-only
blocks (no attention: on the large early maps it costs most and, as LITv1 found, attends mostly
locally anyway); stage 3 uses HiLo (s=2, α=0.9), stage 4 HiLo with s=1 (plain global MSA).
Stages are joined by deformable token merging. There are no position embeddings, so one set of
weights runs at any resolution. Any registered attention can replace HiLo in stage 3 (``attn``,
the paper's ablation) and global MSA in stage 4 (``attn4``): :mod:`hilobench.models.swap`.

Sizes not divisible by 32 run as in the official dense-prediction backbone: the patch
embedding zero-pads the image right/bottom to a multiple of 4 (stage 1 is
``ceil(H/4) × ceil(W/4)``), each token merging is a stride-2 conv that drops an odd last
row/column (stage ``i+1`` is ``floor(h_i/2) × floor(w_i/2)``), and HiLo zero-pads to a multiple
of its window internally and crops back. So 70×90 gives 18×23, 9×11, 4×5, 2×2, and each side
needs at least 29 pixels for stage 4 to be non-empty.
"""

from __future__ import annotations

from typing import Any

from hilobench.attention import Attention, build_attention, get_attention
from hilobench.core.errors import ConfigError, check_choice
from hilobench.models.blocks import (
    Block,
    ClassifierHead,
    ConvFFN,
    HierarchicalNet,
    PatchEmbed,
    Stage,
    members,
)
from hilobench.models.dtm import DTM_MODES, DeformableTokenMerging
from hilobench.models.registry import register_model, variant
from hilobench.models.swap import check_knobs, stage_layer

#: The paper's stage-3 ablation (any registered attention can replace HiLo; these five are
#: the published rows). ``swmsa`` alternates W-MSA and shifted W-MSA block by block (Swin);
#: ``tmsa`` alternates Twins' locally-grouped and global sub-sampled attention (Twins-SVT).
STAGE3_ATTNS = ("hilo", "msa", "sra", "wmsa", "swmsa", "tmsa")
#: Model knobs a LITv2 row registers (every other layer knob reaches its swapped layers too).
LITV2_KNOBS = ("attn", "attn4", "alpha", "window", "dtm")

CONFIGS: dict[str, dict[str, Any]] = {
    "s": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    "m": dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    "b": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
}


class LITv2(HierarchicalNet):
    """LITv2 backbone with classifier head.

    ``attn`` replaces the stage-3 attention with any registered one, ``attn4`` the stage-4
    attention (default: HiLo with s=1, i.e. global MSA, as the paper); ``knobs`` (builder
    arguments: ``alpha``, ``window``, ``split_size``...) configure the swapped layers that take
    them (:mod:`hilobench.models.swap`). ``res``, when given, is the image size the model is
    built for: each swapped layer is checked on its stage's map then, so a layer that cannot
    run there is refused at build time (``name`` names the model in that message);
    ``dtm="conv"`` swaps deformable token merging for a plain stride-2 conv (not the paper's
    model); ``impl`` selects reference or fused attention everywhere.
    """

    def __init__(
        self,
        embed_dim: int = 96,
        depths: tuple[int, ...] = (2, 2, 6, 2),
        num_heads: tuple[int, ...] = (3, 6, 12, 24),
        mlp_ratio: int = 4,
        num_classes: int = 1000,
        in_chans: int = 3,
        attn: str = "hilo",
        attn4: str | None = None,
        dtm: str = "deform",
        impl: str = "reference",
        res: tuple[int, int] | None = None,
        name: str = "LITv2",
        **knobs: Any,
    ) -> None:
        check_choice("dtm", dtm, DTM_MODES)
        swapped = [a for a in (attn, attn4) if a is not None]
        for swap in swapped:
            get_attention(swap)  # an unknown name: one line listing the known ones
        check_knobs(swapped, knobs)
        maps = stage_maps(res, len(depths)) if res is not None else [None] * len(depths)
        dims = [embed_dim * 2**i for i in range(len(depths))]
        stages = []
        for i, (dim, depth, heads) in enumerate(zip(dims, depths, num_heads, strict=True)):
            blocks = []
            for j in range(depth):
                a: Attention | None = None
                if i == 3 and attn4 is None:  # the paper's stage 4: HiLo s=1, global MSA
                    a = build_attention("hilo", dim, heads, impl=impl, window=1)
                elif i >= 2:
                    a = stage_layer(
                        attn if i == 2 else str(attn4), j, dim, heads, maps[i], impl=impl,
                        knobs=knobs, where=f"stage {i + 1} of {name}",
                    )  # fmt: skip
                blocks.append(Block(dim, a, ConvFFN(dim, mlp_ratio * dim)))
            down = DeformableTokenMerging(dims[i - 1], dim, dtm) if i else None
            stages.append(Stage(blocks, down))
        super().__init__(
            PatchEmbed(in_chans, embed_dim, 4), stages, ClassifierHead(dims[-1], num_classes)
        )
        self.dims = dims
        self.stage3_attn, self.stage4_attn, self.dtm = attn, attn4, dtm

    def check_size(self, H: int, W: int) -> None:
        """Reject an image too small for every token merging to leave a non-empty map."""
        h, w = self.patch_embed.out_size(H, W)
        need = 2 ** (len(self.stages) - 1)
        if h < need or w < need:
            least = self.patch_embed.patch * (need - 1) + 1
            raise ConfigError(
                f"{H}x{W} is too small for LITv2: token merging rounds odd maps down, so each "
                f"side needs at least {least} pixels"
            )


def stage_maps(res: tuple[int, int], stages: int) -> list[tuple[int, int]]:
    """Each stage's token map for ``res`` images: ``ceil(side/4)``, then halved rounding down
    (the patch embedding pads, each token merging drops an odd last row/column)."""
    h, w = -(-res[0] // 4), -(-res[1] // 4)
    maps = [(h, w)]
    for _ in range(stages - 1):
        h, w = h // 2, w // 2
        maps.append((h, w))
    return maps


def litv2(size: str, **kwargs: Any) -> LITv2:
    """LITv2-S/M/B (``size`` in s, m, b) with any :class:`LITv2` keyword overrides."""
    check_choice("LITv2 size", size, tuple(CONFIGS))
    return LITv2(**CONFIGS[size], **{"name": f"LITv2-{size.upper()}", **kwargs})


def published_macs(model: HierarchicalNet, H: int, W: int) -> int:
    """MACs as the LIT authors' own bookkeeping counts them (for checking against the paper).

    It reproduces the published LITv1/LITv2 figures exactly, which confirms the architecture;
    :meth:`LITv2.macs` is the count hilobench reports. Differences from it, per the authors'
    convention: LayerNorm and BatchNorm 1 per element, conv biases 1 per output element (token
    merging, offset conv, depthwise conv; not the patch embedding), no pooling; and two
    bookkeeping slips kept for fidelity: the offset conv is charged as 12 channels (it has 8),
    and the final LayerNorm as ``C·h₀w₀/16`` (``h₀w₀`` patch tokens) instead of the ``h₀w₀/64``
    tokens it sees.
    """
    pe = model.patch_embed
    h, w = pe.out_size(H, W)
    total = h * w * pe.dim * (pe.in_chans * pe.patch**2 + 1)
    grid = h * w
    for stage in members(model.stages, Stage):
        down = stage.downsample
        if down is not None:
            if not isinstance(down, DeformableTokenMerging):
                raise TypeError(
                    f"published_macs knows token merging only, not {type(down).__name__}"
                )
            h, w = down.out_size(h, w)
            k2 = down.kernel**2
            offset_channels = 12
            total += h * w * (k2 * down.in_dim * offset_channels + offset_channels)
            total += h * w * (k2 * down.in_dim * down.out_dim + down.out_dim)
            total += h * w * down.out_dim  # BatchNorm
        for block in members(stage.blocks, Block):
            n = h * w
            total += n * block.dim * (1 if block.attn is None else 2)  # LayerNorms
            ffn = block.ffn
            total += 2 * n * ffn.dim * ffn.hidden
            if isinstance(ffn, ConvFFN):
                total += n * ffn.hidden * (9 + 1)
            if block.attn is not None:
                total += block.attn.macs(h, w)
    head = model.head
    return total + head.dim * grid // 2 ** len(model.stages) + head.dim * head.num_classes


register_model(variant("litv2_s", "LITv2-S", "litv2", litv2, "s", LITV2_KNOBS))
register_model(variant("litv2_m", "LITv2-M", "litv2", litv2, "m", LITV2_KNOBS))
register_model(variant("litv2_b", "LITv2-B", "litv2", litv2, "b", LITV2_KNOBS))
register_model(variant("litv2_b_384", "LITv2-B@384", "litv2", litv2, "b", LITV2_KNOBS, 384))
