"""MACs of a dense model by part (backbone, FPN neck, head) and what the count leaves out.

The whole model is traced once with :func:`hilobench.measure.flops.count_macs` (a detector's
non-maximum suppression has no meta kernel, so that trace runs for real on the CPU at batch 1);
the backbone alone and the backbone with its FPN are traced on meta. The neck is the difference
of the two, the head (RPN, box and mask heads, anchors and post-processing included) what the
whole model adds to the backbone with its neck. Norms are counted as in the backbone rows.

Detection post-processing does arithmetic that is not multiply-accumulates: RoI Align
(bilinear sampling), NMS (box overlaps), top-k, sorting, box decoding. These are listed in the
row's ``macs_ignored_ops`` next to softmax and the other ops the paper's convention leaves out;
ops that only index, compare or move data are skipped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from hilobench import options
from hilobench.case import Case
from hilobench.measure.flop_handles import Handle, Value
from hilobench.measure.flops import count_macs
from hilobench.models.dense import DenseModel, build_dense

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


def build_counted(
    case: Case, make_inputs: Callable[[str, int], tuple[Any, ...]]
) -> tuple[DenseModel, dict[str, Any], Callable[[], dict[str, Any]]]:
    """The dense model of a case with a ``head`` option, its row columns, and its counter."""
    opts = dict(case.opts)
    head = str(opts.pop("head"))
    kwargs = options.builder_kwargs("model", opts)
    model = build_dense(case.name, head, res=case.res, impl=case.impl, mode=case.mode, **kwargs)

    def count() -> dict[str, Any]:
        return count_dense(model, make_inputs("cpu", 1)[0])

    return model, model.settings.columns(), count
