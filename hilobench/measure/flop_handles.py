"""Per-operator MAC handles for the traced count, and which operators are MACs at all.

fvcore counts what a trace records operator by operator, through one handle per operator name
(``"aten::linear"``). This module owns that table's contents: the handles for operators fvcore
misses or gets wrong (``scaled_dot_product_attention``, torchvision's ``deform_conv2d``,
``matmul`` with broadcast or 1-D operands, ``einsum`` without building operand-sized arrays,
``grid_sample``), fvcore's normalisation handles (counted only on request), and the operators
that are not MACs by the paper's convention (``CONVENTION_IGNORED``) or do no arithmetic
(``DATA_MOVEMENT``).
:mod:`hilobench.measure.flops` runs the trace with them.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch

with warnings.catch_warnings():  # fvcore scripts a loss function on import: a jit warning
    warnings.simplefilter("ignore")
    from fvcore.nn.jit_handles import batchnorm_flop_jit, get_shape, norm_flop_counter

__all__ = [
    "CONVENTION_IGNORED",
    "DATA_MOVEMENT",
    "MAC_HANDLES",
    "NORM_HANDLES",
    "Handle",
    "Value",
    "conv_mode_handle",
    "deform_conv2d_handle",
    "einsum_handle",
    "grid_sampler_handle",
    "sdpa_handle",
]

#: A traced value: an input or output of one operator in the TorchScript graph.
Value = torch._C.Value
#: fvcore handle: ``(jit input values, jit output values) -> count`` (a number or a Counter).
Handle = Callable[[list[Value], list[Value]], float | Counter[str]]


def _constant(value: Value) -> Any:
    """The Python value of a traced constant (an int, a list of ints, a string).

    torch's stubs type ``Value.toIValue()`` as an opaque ``IValue``; it returns the plain value.
    """
    return value.toIValue()


# ---------------------------------------------------------------------------------------------
# operator classification
# ---------------------------------------------------------------------------------------------

#: Arithmetic that the paper's convention does not count as MACs (reported in ``ignored``).
CONVENTION_IGNORED: frozenset[str] = frozenset(
    "aten::" + op
    for op in (
        # softmax / scaling / biases / activations / elementwise
        "softmax _softmax log_softmax add add_ sub sub_ rsub mul mul_ div div_ neg exp log "
        "sqrt rsqrt pow square reciprocal abs sign erf gelu silu sigmoid tanh elu leaky_relu "
        "hardswish hardsigmoid hardtanh mish softplus addcmul addcdiv lerp maximum minimum "
        "clamp_min clamp_max where masked_fill_ cumsum mean sum var std "
        "linalg_vector_norm frobenius_norm norm "
        # pooling and interpolation
        "avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d "
        "adaptive_avg_pool3d max_pool1d max_pool2d max_pool3d adaptive_max_pool1d "
        "adaptive_max_pool2d adaptive_max_pool3d upsample_nearest1d upsample_nearest2d "
        "upsample_bilinear2d upsample_bicubic2d upsample_linear1d upsample_trilinear3d "
        "col2im "
        # dropout
        "dropout_ feature_dropout alpha_dropout"
    ).split()
)

#: Normalisations: ignored by default, counted with fvcore's handles when ``count_norms``.
NORM_HANDLES: dict[str, Handle] = {
    "aten::layer_norm": norm_flop_counter(2),
    "aten::group_norm": norm_flop_counter(2),
    "aten::instance_norm": norm_flop_counter(1),
    "aten::batch_norm": batchnorm_flop_jit,
    "aten::rms_norm": norm_flop_counter(2),
}

#: Zero-arithmetic ops (shape, copy, indexing, comparison, factories) beyond fvcore's own list.
DATA_MOVEMENT: frozenset[str] = frozenset(
    "aten::" + op
    for op in (
        "pad reflection_pad1d reflection_pad2d replication_pad1d replication_pad2d "
        "circular_pad2d view_as expand_as repeat repeat_interleave tile movedim swapaxes "
        "swapdims clone tensor_split unflatten flip im2col pixel_shuffle pixel_unshuffle "
        "ones_like empty_like rand rand_like randn randn_like randint lift_fresh _unsafe_view "
        "alias as_strided index_select embedding meshgrid linspace lt le ne logical_and "
        "logical_or logical_not any all item zero_ fill_ new_ones detach_ argmax argmin sort topk "
        "scalar_tensor tensor one_hot unfold diagonal triu tril masked_select empty_strided "
        "resolve_conj resolve_neg"
    ).split()
)


# ---------------------------------------------------------------------------------------------
# handles
# ---------------------------------------------------------------------------------------------


def _shape(value: Value) -> list[int]:
    shape = get_shape(value)
    if shape is None:
        raise ValueError(f"no static shape for traced value {value!r}")
    return list(shape)


def _out_numel_times(k_of: Callable[[list[Value]], int]) -> Handle:
    """Handle counting ``numel(output) * K``: every output element is a K-long dot product."""

    def handle(inputs: list[Value], outputs: list[Value]) -> int:
        return math.prod(_shape(outputs[0])) * k_of(inputs)

    return handle


def _last_dim(index: int) -> Callable[[list[Value]], int]:
    return lambda inputs: _shape(inputs[index])[-1]


def sdpa_handle(inputs: list[Value], outputs: list[Value]) -> int:
    """``q @ kᵀ`` and ``attn @ v``: batch·heads · Lq·Lk · (d_qk + d_v).

    ``attn_mask`` (added, not multiplied) and ``is_causal`` do not change the count: it is the
    dense product count, the same the explicit matmul formulation performs.
    """
    q, k, v = (_shape(t) for t in inputs[:3])
    out = get_shape(outputs[0])
    lead = list(out[:-2]) if out is not None else q[:-2]
    return math.prod(lead) * q[-2] * k[-2] * (q[-1] + v[-1])


def deform_conv2d_handle(inputs: list[Value], outputs: list[Value]) -> int:
    """Like a convolution of the same shapes: out elements x in_ch/groups x kh x kw.

    The bilinear sampling at the offsets and the optional modulation mask are not MACs by the
    convention used for interpolation; the offset-predicting conv is an ordinary conv.
    """
    weight = _shape(inputs[1])  # (out_ch, in_ch / groups, kh, kw)
    return math.prod(_shape(outputs[0])) * math.prod(weight[1:])


#: MACs per output element of bilinear ``grid_sample`` on a 2-D map: a weighted sum of the four
#: neighbours. fvcore charges every ``grid_sampler`` this rate, so the published DAT figure has it.
GRID_SAMPLE_BILINEAR_MACS = 4


def grid_sampler_handle(inputs: list[Value], outputs: list[Value]) -> int:
    """``grid_sample``: every output element is a weighted sum of its corner neighbours, 4 per
    element for bilinear on a 2-D map (8, trilinear, on a 3-D one), 16 for bicubic, none for
    nearest (a copy). Counted because deformable attention (DAT) samples its keys and its
    position bias this way, and fvcore, which made the published figures, counts it too (at 4,
    whatever the mode)."""
    out = _shape(outputs[0])
    mode = _constant(inputs[2])  # 0 bilinear, 1 nearest, 2 bicubic
    per = {0: 2 ** (len(out) - 2), 1: 0, 2: 16}.get(int(mode), GRID_SAMPLE_BILINEAR_MACS)
    return math.prod(out) * per


def conv_mode_handle(inputs: list[Value], outputs: list[Value]) -> Counter[str]:
    """``aten::_convolution_mode`` (string padding, "same"/"valid"): a conv, reported as such."""
    weight = _shape(inputs[1])
    return Counter({"conv": math.prod(_shape(outputs[0])) * math.prod(weight[1:])})


def _tensordot_k(inputs: list[Value]) -> int:
    a = _shape(inputs[0])
    dims = _constant(inputs[2])
    return math.prod(a[d] for d in dims)


def _vecdot_k(inputs: list[Value]) -> int:
    a, b = _shape(inputs[0]), _shape(inputs[1])
    dim = _constant(inputs[2])
    return max(a[dim] if a else 1, b[dim] if b else 1)


def _einsum_labels(equation: str, shapes: list[list[int]]) -> tuple[list[list[str]], list[str]]:
    """Operand and output label lists, with ``...`` expanded to shared right-aligned labels."""
    lhs, arrow, rhs = equation.replace(" ", "").partition("->")
    terms = lhs.split(",")
    n_ell = max(
        (len(s) - (len(t) - 3) for t, s in zip(terms, shapes, strict=True) if "..." in t),
        default=0,
    )
    ell = [f"<{i}>" for i in range(n_ell)]

    def expand(term: str, ndim: int | None) -> list[str]:
        head, dots, tail = term.partition("...")
        if not dots:
            return list(term)
        n = n_ell if ndim is None else ndim - len(head) - len(tail)
        return list(head) + ell[n_ell - n :] + list(tail)

    ops = [expand(t, len(s)) for t, s in zip(terms, shapes, strict=True)]
    if arrow:
        out = expand(rhs, None)
    else:
        counts = Counter(label for o in ops for label in o if len(label) == 1)
        out = ell + sorted(label for label, c in counts.items() if c == 1)
    return ops, out


def einsum_handle(inputs: list[Value], outputs: list[Value]) -> int:
    """Shape-only einsum count: a pairwise contraction costs the product of all its label sizes.

    More than two operands are contracted left to right (torch's order without opt_einsum).
    """
    equation = _constant(inputs[0])
    shapes = [_shape(v) for v in inputs[1].node().inputs()]
    ops, out = _einsum_labels(equation, shapes)
    size: dict[str, int] = {}
    for labels, shape in zip(ops, shapes, strict=True):
        for label, n in zip(labels, shape, strict=True):
            size[label] = max(size.get(label, 1), n)
    if len(ops) < 2:
        return 0
    macs, cur = 0, ops[0]
    for i in range(1, len(ops)):
        involved = list(dict.fromkeys(cur + ops[i]))
        macs += math.prod(size[label] for label in involved)
        later = set(out).union(*ops[i + 1 :])
        cur = [label for label in involved if label in later]
    return macs


#: Our MAC handles; they replace or extend fvcore's defaults.
MAC_HANDLES: dict[str, Handle] = {
    "aten::linear": _out_numel_times(lambda i: _shape(i[1])[-1]),
    "aten::matmul": _out_numel_times(_last_dim(0)),
    "aten::mm": _out_numel_times(_last_dim(0)),
    "aten::bmm": _out_numel_times(_last_dim(0)),
    "aten::addmm": _out_numel_times(_last_dim(1)),
    "aten::baddbmm": _out_numel_times(_last_dim(1)),
    "aten::addbmm": lambda i, o: math.prod(_shape(i[1])) * _shape(i[2])[-1],
    "aten::mv": lambda i, o: math.prod(_shape(i[0])),
    "aten::addmv": lambda i, o: math.prod(_shape(i[1])),
    "aten::dot": lambda i, o: math.prod(_shape(i[0])),
    "aten::vdot": lambda i, o: math.prod(_shape(i[0])),
    "aten::outer": _out_numel_times(lambda i: 1),
    "aten::ger": _out_numel_times(lambda i: 1),
    "aten::addr": _out_numel_times(lambda i: 1),
    "aten::tensordot": _out_numel_times(_tensordot_k),
    "aten::linalg_vecdot": _out_numel_times(_vecdot_k),
    "aten::einsum": einsum_handle,
    "aten::_convolution_mode": conv_mode_handle,
    "aten::scaled_dot_product_attention": sdpa_handle,
    "torchvision::deform_conv2d": deform_conv2d_handle,
    "aten::grid_sampler": grid_sampler_handle,
}
