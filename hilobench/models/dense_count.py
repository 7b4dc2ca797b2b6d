"""MACs of a dense model by part (backbone, FPN neck, head) and what the count leaves out.

The whole model is traced once with :func:`hilobench.measure.flops.count_macs` (a detector's
non-maximum suppression has no meta kernel, so that trace runs for real on the CPU at batch 1);
the backbone alone and the backbone with its FPN are traced on meta. The neck is the difference
of the two, the head (RPN, box and mask heads, anchors and post-processing included) what the
whole model adds to the backbone with its neck. Norms are counted as in the backbone rows.

The analytic count (``macs_analytic``) composes the backbone's own formula (its layers'
``macs(H, W)``) with the FPN's and the head's convolutions and linears by formula; it equals the
traced total, since both leave out the same ops (those below). Mask R-CNN's box head is counted
over the proposals the RPN keeps and its mask head over the boxes kept per image, the caps that
random weights always fill.

Detection post-processing does arithmetic that is not multiply-accumulates: RoI Align
(bilinear sampling), NMS (box overlaps), top-k, sorting, box decoding. These are listed in the
row's ``macs_ignored_ops`` next to softmax and the other ops the paper's convention leaves out;
ops that only index, compare or move data are skipped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from hilobench.core import options
from hilobench.core.case import Case
from hilobench.measure.flop_handles import Handle, Value
from hilobench.measure.flops import count_macs
from hilobench.models.blocks import BATCHNORM_MACS
from hilobench.models.dense import COCO_CLASSES, FPN_CHANNELS, DenseModel, build_dense
from hilobench.models.semfpn import ADE20K_CLASSES, SEMANTIC_CHANNELS

#: Arithmetic of detection post-processing that is not MACs: listed as not counted.
NOT_MACS = tuple(
    "torchvision::nms torchvision::roi_align aten::topk aten::sort aten::argsort aten::max "
    "aten::min aten::amax aten::clamp aten::clamp_ aten::log2 aten::floor aten::round "
    "aten::sigmoid_ aten::exp_ aten::mul_ aten::sub_ aten::add_ aten::div_ "
    "aten::upsample_bilinear2d aten::grid_sampler aten::linspace aten::ceil "
    "prim::CallFunction".split()
)
#: Ops that index, compare, allocate or move data (no arithmetic to speak of): not listed.
DATA_OPS = tuple(
    "aten::index aten::index_put_ aten::nonzero aten::where aten::gt aten::ge aten::lt aten::le "
    "aten::eq aten::ne aten::__and__ aten::__or__ aten::bitwise_and aten::logical_and "
    "aten::arange aten::meshgrid aten::full aten::full_like aten::zeros aten::zeros_like "
    "aten::ones aten::ones_like aten::empty aten::new_zeros aten::new_full aten::new_ones "
    "aten::scalar_tensor aten::unbind aten::split aten::split_with_sizes aten::chunk "
    "aten::stack aten::cat aten::to aten::copy_ aten::fill_ aten::zero_ aten::masked_select "
    "aten::repeat aten::repeat_interleave aten::expand aten::expand_as aten::gather "
    "aten::scatter aten::index_select aten::narrow aten::select aten::slice aten::flatten "
    "aten::unflatten aten::reshape aten::view aten::clone aten::detach aten::contiguous "
    "aten::unsqueeze aten::squeeze aten::int aten::Int aten::size aten::numel aten::type_as "
    "aten::to_padded_tensor aten::constant_pad_nd aten::_unique2 aten::unique_dim "
    "aten::lift_fresh aten::alias aten::item aten::bitwise_not aten::logical_not "
    "aten::_shape_as_tensor aten::abs aten::any aten::all aten::argmax aten::resize_ "
    "aten::as_strided".split()
)


#: What ``prim::CallFunction`` is in a detector's trace: torchvision scripts its batched NMS
#: and its mask pasting when traced, so the tracer sees one call and not the ops inside.
SCRIPTED = "prim::CallFunction (torchvision's scripted batched NMS and mask pasting)"


def _free(inputs: list[Value], outputs: list[Value]) -> int:
    return 0


#: Handles for the whole-model trace: None = listed as not MACs, ``_free`` = silent.
HANDLES: dict[str, Handle | None] = {op: None for op in NOT_MACS} | dict.fromkeys(DATA_OPS, _free)


def count_dense(model: DenseModel, x: torch.Tensor) -> dict[str, Any]:
    """Row columns: ``macs_traced`` (whole model), ``macs_parts`` (backbone / neck / head),
    ``uncounted_ops`` (ops that may hide MACs: the total is then a lower bound) and
    ``macs_ignored_ops`` (arithmetic that is not MACs by convention)."""
    was_training = model.training
    model.eval()  # BatchNorm at inference; the detector's inference path (post-processing)
    try:
        whole = count_macs(model, (x,), count_norms=True, extra_handles=HANDLES)
        neck = count_macs(model.backbone_with_fpn, (x,), count_norms=True)
        body = count_macs(model.backbone_with_fpn.body, (x,), count_norms=True)
    finally:
        model.train(was_training)
    parts = {
        "backbone": body.total,
        "neck": neck.total - body.total,
        "head": whole.total - neck.total,
    }
    uncounted = sorted({*whole.uncounted, *neck.uncounted, *body.uncounted})
    ignored = {*whole.ignored, *neck.ignored, *body.ignored}
    if "prim::CallFunction" in ignored:
        ignored = (ignored - {"prim::CallFunction"}) | {SCRIPTED}
    return {
        "macs_traced": whole.total,
        "macs_parts": parts,
        "uncounted_ops": uncounted,
        "macs_ignored_ops": sorted(ignored),
    }


#: torchvision's detection heads as built here: anchors per location (RetinaNet: 3 sizes x 3
#: ratios; the RPN: 3 ratios), the box head's RoI side and width, the mask head's RoI side.
RETINA_ANCHORS, RPN_ANCHORS = 9, 3
BOX_ROI, BOX_HIDDEN, MASK_ROI = 7, 1024, 14


def _conv(hw: tuple[int, int], cin: int, cout: int, k: int = 3) -> int:
    return hw[0] * hw[1] * cin * cout * k * k


def _half(hw: tuple[int, int]) -> tuple[int, int]:
    """A stride-2 step that keeps a partial last row/column (3x3 conv, padding 1; 1x1 pool)."""
    return -(-hw[0] // 2), -(-hw[1] // 2)


def fpn_macs(chans: list[int], sizes: list[tuple[int, int]]) -> int:
    """torchvision's FPN: a 1x1 lateral conv and a 3x3 output conv per level (the top-down
    upsampling and sums are free)."""
    return sum(
        _conv(hw, c, FPN_CHANNELS, 1) + _conv(hw, FPN_CHANNELS, FPN_CHANNELS)
        for c, hw in zip(chans, sizes, strict=True)
    )


def head_macs(model: DenseModel, sizes: list[tuple[int, int]], last: int) -> int:
    """MACs of the extra FPN levels and the head over the four stage maps ``sizes`` (finest
    first); ``last`` is the last stage's width. Mask R-CNN's box head is counted over
    ``model.proposals`` RoIs and its mask head over the detections per image, the numbers the
    RPN and the post-processing keep when enough boxes survive their NMS (random weights give
    far more candidates than that)."""
    f, head = FPN_CHANNELS, model.settings.head
    if head == "semfpn":  # a 3x3 conv + BatchNorm per step, each at the map it starts from
        c = SEMANTIC_CHANNELS
        total = 0
        for i in range(len(sizes)):
            for j in range(max(1, i)):
                hw = sizes[i - j]
                total += _conv(hw, f if j == 0 else c, c) + BATCHNORM_MACS * hw[0] * hw[1] * c
        return total + _conv(sizes[0], c, ADE20K_CLASSES, 1)
    if head == "retinanet":  # P6 from the last stage's map, P7 from P6; two towers per level
        p6 = _half(sizes[-1])
        p7 = _half(p6)
        total = _conv(p6, last, f) + _conv(p7, f, f)
        out = RETINA_ANCHORS * (COCO_CLASSES + 4)
        return total + sum(8 * _conv(hw, f, f) + _conv(hw, f, out) for hw in [*sizes[1:], p6, p7])
    levels = [*sizes, _half(sizes[-1])]  # Mask R-CNN: P6 is a max-pooled P5
    rpn = sum(_conv(hw, f, f) + _conv(hw, f, RPN_ANCHORS * 5, 1) for hw in levels)
    classes = COCO_CLASSES + 1
    box = model.proposals * BOX_HIDDEN * (f * BOX_ROI**2 + BOX_HIDDEN + 5 * classes)
    roi = (MASK_ROI, MASK_ROI)
    up = (2 * MASK_ROI, 2 * MASK_ROI)
    per_mask = 4 * _conv(roi, f, f) + _conv(up, f, f, 1) + _conv(up, f, classes, 1)
    return rpn + box + int(model.settings.det_per_img or 0) * per_mask


def analytic_dense(model: DenseModel, res: tuple[int, int]) -> int | None:
    """Analytic MACs of one ``res`` image through the dense model: the backbone's own count
    (its stages' ``macs``), the FPN and the head by formula; None for a backbone without a
    formula (timm's)."""
    body = model.backbone_with_fpn.body
    macs, map_sizes = getattr(body, "macs", None), getattr(body, "map_sizes", None)
    if not callable(macs) or not callable(map_sizes):
        return None
    sizes: list[tuple[int, int]] = map_sizes(*res)
    levels = [int(k) for k in model.backbone_with_fpn.levels]
    chans = [body.out_channels[i] for i in levels]
    total = int(macs(*res)) + fpn_macs(chans, [sizes[i] for i in levels])
    return total + head_macs(model, sizes, body.out_channels[-1])


def build_counted(
    case: Case, make_inputs: Callable[[str, int], tuple[Any, ...]]
) -> tuple[DenseModel, dict[str, Any], Callable[[], dict[str, Any]]]:
    """The dense model of a case with a ``head`` option, its row columns, and its counter."""
    opts = dict(case.opts)
    head = str(opts.pop("head"))
    kwargs = options.builder_kwargs("model", opts)
    model = build_dense(case.name, head, res=case.res, impl=case.impl, mode=case.mode, **kwargs)

    def count() -> dict[str, Any]:
        return {
            **count_dense(model, make_inputs("cpu", 1)[0]),
            "macs_analytic": analytic_dense(model, case.res),
        }

    return model, model.settings.columns(), count
