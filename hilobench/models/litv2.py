"""LITv2 (Fast Vision Transformers with HiLo Attention): LITv2-S/M/B.

Four stages at strides 4/8/16/32 with widths ``embed·2^i``. Stages 1–2 hold ConvFFN-only
blocks (no attention: on the large early maps it costs most and, as LITv1 found, attends mostly
locally anyway); stage 3 uses HiLo (s=2, α=0.9), stage 4 HiLo with s=1 (plain global MSA).
Stages are joined by deformable token merging. There are no position embeddings, so one set of
weights runs at any resolution.

Sizes not divisible by 32 run as in the official dense-prediction backbone: the patch
embedding zero-pads the image right/bottom to a multiple of 4 (stage 1 is
``ceil(H/4) × ceil(W/4)``), each token merging is a stride-2 conv that drops an odd last
row/column (stage ``i+1`` is ``floor(h_i/2) × floor(w_i/2)``), and HiLo zero-pads to a multiple
of its window internally and crops back. So 70×90 gives 18×23, 9×11, 4×5, 2×2, and each side
needs at least 29 pixels for stage 4 to be non-empty.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hilobench import options
from hilobench.attention import Attention, build_attention
from hilobench.errors import ConfigError, check_choice
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
from hilobench.models.registry import ModelEntry, register_model

#: Attentions that can replace HiLo in stage 3 (the paper's ablation). ``swmsa`` alternates
#: W-MSA and shifted W-MSA block by block (Swin); ``tmsa`` alternates Twins' locally-grouped and
#: global sub-sampled attention block by block (Twins-SVT).
STAGE3_ATTNS = ("hilo", "msa", "sra", "wmsa", "swmsa", "tmsa")
#: Knobs a LITv2 model passes on to its stage-3 attention, where that attention takes them.
STAGE3_KNOBS = ("alpha", "window")
#: Model knobs a LITv2 row takes.
LITV2_KNOBS = ("attn", "alpha", "window", "dtm")
#: Spatial-reduction ratio of SRA / Twins GSA at stage 3 (PVT's and Twins-SVT's value there).
STAGE3_SR_RATIO = 2

CONFIGS: dict[str, dict[str, Any]] = {
    "s": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    "m": dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    "b": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
}


def stage3_attention(
    attn: str, dim: int, heads: int, index: int, impl: str, alpha: float, window: int | None
) -> Attention:
    """The stage-3 attention of block ``index`` for the chosen ``attn``."""
    if attn == "hilo":
        s = 2 if window is None else window
        return build_attention("hilo", dim, heads, impl=impl, window=s, alpha=alpha)
    if attn == "msa":
        return build_attention("msa", dim, heads, impl=impl)
    if attn == "sra":
        return build_attention("sra", dim, heads, impl=impl, sr_ratio=STAGE3_SR_RATIO)
    w = 7 if window is None else window
    if attn == "wmsa":
        return build_attention("wmsa", dim, heads, impl=impl, window=w)
    if attn == "swmsa":
        name = "wmsa" if index % 2 == 0 else "swmsa"
        return build_attention(name, dim, heads, impl=impl, window=w)
    if index % 2 == 0:  # tmsa
        return build_attention("lsa", dim, heads, impl=impl, window=w)
    return build_attention("gsa", dim, heads, impl=impl, sr_ratio=STAGE3_SR_RATIO)


class LITv2(HierarchicalNet):
    """LITv2 backbone with classifier head.

    ``attn`` replaces the stage-3 attention (stage 4 stays global MSA); ``alpha`` and
    ``window`` configure it (``window`` is HiLo's ``s``, or the window of W-MSA / Twins LSA);
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
        alpha: float | None = None,
        window: int | None = None,
        dtm: str = "deform",
        impl: str = "reference",
    ) -> None:
        check_choice("attention", attn, STAGE3_ATTNS)
        check_choice("dtm", dtm, DTM_MODES)
        takes = [k for k in STAGE3_KNOBS if options.takes("layer", attn, k)]
        for knob, value in (("alpha", alpha), ("window", window)):
            if value is not None and knob not in takes:
                raise ConfigError(
                    f"attention {attn!r} does not take {knob}={value!r} "
                    f"(it takes: {', '.join(takes) or 'no options'})"
                )
        alpha = 0.9 if alpha is None else alpha
        dims = [embed_dim * 2**i for i in range(len(depths))]
        stages = []
        for i, (dim, depth, heads) in enumerate(zip(dims, depths, num_heads, strict=True)):
            blocks = []
            for j in range(depth):
                if i < 2:
                    a = None
                elif i == 2:
                    a = stage3_attention(attn, dim, heads, j, impl, alpha, window)
                else:  # HiLo with s=1 is global MSA; alpha is ignored
                    a = build_attention("hilo", dim, heads, impl=impl, window=1, alpha=alpha)
                blocks.append(Block(dim, a, ConvFFN(dim, mlp_ratio * dim)))
            down = DeformableTokenMerging(dims[i - 1], dim, dtm) if i else None
            stages.append(Stage(blocks, down))
        super().__init__(
            PatchEmbed(in_chans, embed_dim, 4), stages, ClassifierHead(dims[-1], num_classes)
        )
        self.dims = dims
        self.stage3_attn, self.alpha, self.window, self.dtm = attn, alpha, window, dtm

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


def litv2(size: str, **kwargs: Any) -> LITv2:
    """LITv2-S/M/B (``size`` in s, m, b) with any :class:`LITv2` keyword overrides."""
    check_choice("LITv2 size", size, tuple(CONFIGS))
    return LITv2(**CONFIGS[size], **kwargs)


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


def _builder(size: str) -> Callable[..., LITv2]:
    def build(
        *, res: tuple[int, int], impl: str = "reference", num_classes: int = 1000, **options: Any
    ) -> LITv2:
        return litv2(size, impl=impl, num_classes=num_classes, **options)

    return build


for _size in CONFIGS:
    register_model(
        ModelEntry(
            name=f"litv2_{_size}",
            display=f"LITv2-{_size.upper()}",
            family="litv2",
            source="hilobench",
            builder=_builder(_size),
            default_res=224,
            options=LITV2_KNOBS,
        )
    )
register_model(
    ModelEntry(
        name="litv2_b_384",
        display="LITv2-B@384",
        family="litv2",
        source="hilobench",
        builder=_builder("b"),
        default_res=384,
        options=LITV2_KNOBS,
    )
)
