"""Traced multiply-accumulate counts: fvcore plus the operators it leaves out.

The paper's "FLOPs" are multiply-accumulates (MACs), and fvcore already counts one fused
multiply-add as one. What it misses is exactly what modern attention code runs:
``scaled_dot_product_attention`` (the fused path of every layer here) and torchvision's
``deform_conv2d`` (the LITv2 token merging). We add those, replace fvcore's ``matmul`` and
``einsum`` handles (the first is wrong for broadcast and 1-D operands, the second builds
arrays the size of the operands), and make the rest of the trace explicit:

* ``by_op``: MACs per operator, from matmul-like ops (linear, matmul, bmm, conv, sdpa, ...).
* ``ignored``: operators that do arithmetic but are *not* MACs by the paper's convention:
  softmax, scaling, biases and other elementwise ops, pooling, interpolation, and the
  normalisations unless ``count_norms=True``. Pure data movement (view, permute, roll, pad,
  cat, ...) is skipped silently. fvcore itself charges adaptive average pooling and
  interpolation per element; pass e.g. ``extra_handles={"aten::adaptive_avg_pool2d":
  fvcore.nn.jit_handles.elementwise_flop_counter(1, 0)}`` to reproduce such a count.
* ``uncounted``: operators that appeared, have no handle and are not known to be free or
  ignored; they may hide MACs, so a non-empty list means the total is a lower bound.

Counting runs on the ``meta`` device by default: a copy of the module whose parameters are
meta tensors (no parameter data is copied) is traced with meta inputs, so a 1536x1536 image
costs no activation memory. Should a module refuse meta (data-dependent Python, a kernel
without a meta implementation), the count falls back to a real CPU trace at batch 1, scaled by
the batch; every MAC-carrying op here is linear in the batch, so the total is unchanged.

The per-operator handles and the classification of operators live in
:mod:`hilobench.measure.flop_handles`; this module runs the trace and assembles the count.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import TreeSpec, tree_flatten, tree_unflatten

from hilobench.measure.flop_handles import (
    CONVENTION_IGNORED,
    DATA_MOVEMENT,
    MAC_HANDLES,
    NORM_HANDLES,
    Handle,
    Value,
)

with warnings.catch_warnings():  # fvcore scripts a loss function on import: a jit warning
    warnings.simplefilter("ignore")
    from fvcore.nn import FlopCountAnalysis

__all__ = ["Handle", "MacCount", "count_macs", "layer_macs"]


@dataclass
class MacCount:
    """Multiply-accumulates of one call, per operator, and what the count did not cover."""

    total: int
    by_op: dict[str, int] = field(default_factory=dict)
    #: ops seen in the trace with no handle that may carry MACs: non-empty = lower bound
    uncounted: list[str] = field(default_factory=list)
    #: ops seen in the trace that do arithmetic but are not MACs by convention
    ignored: list[str] = field(default_factory=list)
    #: device the trace ran on ("meta", or the fallback "cpu" at batch 1, scaled)
    traced_on: str = "meta"
    #: MACs per module, each including its submodules', keyed by the module's name in
    #: ``named_modules()`` ("" is the module itself); read by ``hilobench profile``
    by_module: dict[str, int] = field(default_factory=dict)


class _Bound(nn.Module):
    """Calls ``inner`` with the original arguments, taking only their tensors as inputs."""

    def __init__(
        self, inner: nn.Module, leaves: list[Any], spec: TreeSpec, slots: list[int]
    ) -> None:
        super().__init__()
        self.inner = inner
        self._leaves, self._spec, self._slots = leaves, spec, slots

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        leaves = list(self._leaves)
        for slot, t in zip(self._slots, tensors, strict=True):
            leaves[slot] = t
        args = tree_unflatten(leaves, self._spec)
        out = self.inner(*args)
        return tuple(t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor))


_CONV_FUNCS: dict[Callable[..., torch.Tensor], tuple[int, bool]] = {
    torch.conv1d: (1, False),
    torch.conv2d: (2, False),
    torch.conv3d: (3, False),
    torch.conv_transpose1d: (1, True),
    torch.conv_transpose2d: (2, True),
    torch.conv_transpose3d: (3, True),
}


def _ntuple(v: Any, n: int) -> list[int]:
    return [int(x) for x in v] if isinstance(v, (list, tuple)) else [int(v)] * n


def _as_convolution(n: int, transposed: bool, *args: Any, **kwargs: Any) -> torch.Tensor:
    names = ["input", "weight", "bias", "stride", "padding"]
    names += ["output_padding", "groups", "dilation"] if transposed else ["dilation", "groups"]
    p = dict(zip(names, args, strict=False)) | kwargs
    x, w, bias = p["input"], p["weight"], p.get("bias")
    stride = _ntuple(p.get("stride", 1), n)
    dilation = _ntuple(p.get("dilation", 1), n)
    groups = int(p.get("groups", 1))
    out_pad = _ntuple(p.get("output_padding", 0), n)
    padding = p.get("padding", 0)
    if isinstance(padding, str):
        if padding == "valid":
            padding = [0] * n
        else:  # "same": torch pads the extra element of an odd total on the right
            totals = [d * (k - 1) for d, k in zip(dilation, w.shape[2:], strict=True)]
            padding = [t // 2 for t in totals]
            extra = [t - 2 * (t // 2) for t in totals]
            if any(extra):
                x = torch.nn.functional.pad(x, [v for e in reversed(extra) for v in (0, e)])
    padding = _ntuple(padding, n)
    unbatched = x.dim() == n + 1
    if unbatched:
        x = x.unsqueeze(0)
    # trailing flags: cudnn benchmark, deterministic, cudnn enabled, allow tf32 (shape-neutral)
    flags = (False, False, True, True)
    y = torch._convolution(
        x, w, bias, stride, padding, dilation, transposed, out_pad, groups, *flags
    )
    return y.squeeze(0) if unbatched else y


class _MetaConvolution(TorchFunctionMode):
    """Route ``conv*d`` calls to ``aten::_convolution`` while tracing on meta.

    The JIT tracer records convolutions at ``aten::_convolution``, which the CPU/CUDA kernels
    reach through ``aten::convolution``; on meta, ``aten::convolution`` has its own Python
    kernel that never reaches ``_convolution`` and trips over the tracer's tensor-valued sizes.
    Calling ``_convolution`` directly records the same node a real-device trace records.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        spec = _CONV_FUNCS.get(func)
        if spec is not None:
            return _as_convolution(*spec, *args, **(kwargs or {}))
        return func(*args, **(kwargs or {}))


_META_CONV_LIB: Any = None  # kept alive: dropping the Library object removes its kernel


def _meta_convolution_kernel() -> None:
    """Older torch (2.6) has no meta kernel behind ``aten::_convolution`` (it dispatches to
    ``convolution_overrideable``, unimplemented for meta), so every network with a convolution
    would be counted on CPU instead. Register one there that gives the shape through
    ``aten::convolution``'s meta kernel; below the tracer, so the trace is unchanged. A torch
    that has its own is left alone."""
    global _META_CONV_LIB
    if _META_CONV_LIB is not None:
        return
    x, w = torch.empty(1, 1, 2, 2, device="meta"), torch.empty(1, 1, 1, 1, device="meta")
    try:
        torch._convolution(x, w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1,
                           False, False, True, True)  # fmt: skip
        _META_CONV_LIB = False
        return
    except (NotImplementedError, RuntimeError):
        pass

    def conv(x, w, bias, stride, padding, dilation, transposed, out_pad, groups):
        return torch.ops.aten.convolution.default(
            x, w, bias, stride, padding, dilation, transposed, out_pad, groups
        )

    _META_CONV_LIB = torch.library.Library("aten", "IMPL")
    _META_CONV_LIB.impl("convolution_overrideable", conv, "Meta")


def _ignore_recorder(name: str, seen: set[str]) -> Handle:
    def handle(inputs: list[Value], outputs: list[Value]) -> int:
        seen.add(name)
        return 0

    return handle


def _meta_copy(module: nn.Module) -> nn.Module:
    """Deep copy with every tensor replaced by a meta tensor, without copying tensor data."""
    memo: dict[int, Any] = {}
    for m in module.modules():
        for p in m._parameters.values():
            if p is not None and id(p) not in memo:
                memo[id(p)] = nn.Parameter(p.detach().to("meta"), requires_grad=p.requires_grad)
        tensors = list(m._buffers.values()) + list(vars(m).values())
        for t in tensors:
            if isinstance(t, torch.Tensor) and id(t) not in memo:
                memo[id(t)] = t.detach().to("meta")
    return copy.deepcopy(module, memo)


def _on_device(module: nn.Module, device: torch.device) -> nn.Module:
    tensors = list(module.parameters()) + list(module.buffers())
    if all(t.device == device for t in tensors):
        return module  # tracing adds and removes hooks only; no copy needed
    return copy.deepcopy(module).to(device)


def _materialize(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    if t.device.type != "meta":
        return t.to(device)
    if t.is_floating_point() or t.is_complex():
        return torch.randn(t.shape, dtype=t.dtype, device=device)
    return torch.zeros(t.shape, dtype=t.dtype, device=device)


def _trace_count(
    module: nn.Module,
    leaves: list[Any],
    spec: TreeSpec,
    device: torch.device,
    count_norms: bool,
    extra_handles: dict[str, Handle | None] | None,
) -> MacCount:
    slots = [i for i, v in enumerate(leaves) if isinstance(v, torch.Tensor)]
    tensors = tuple(leaves[i] for i in slots)
    consts = [None if i in slots else v for i, v in enumerate(leaves)]
    seen_ignored: set[str] = set()
    handles: dict[str, Handle | None] = {op: None for op in DATA_MOVEMENT}
    handles |= {op: _ignore_recorder(op, seen_ignored) for op in CONVENTION_IGNORED}
    for op, h in NORM_HANDLES.items():
        handles[op] = h if count_norms else _ignore_recorder(op, seen_ignored)
    handles |= MAC_HANDLES
    for op, extra in (extra_handles or {}).items():
        handles[op] = extra if extra is not None else _ignore_recorder(op, seen_ignored)

    analysis = (
        FlopCountAnalysis(_Bound(module, consts, spec, slots), tensors)
        .set_op_handle(**handles)
        .unsupported_ops_warnings(False)
        .uncalled_modules_warnings(False)
        .tracer_warnings("none")
    )
    if device.type == "meta":
        _meta_convolution_kernel()
    mode = _MetaConvolution() if device.type == "meta" else contextlib.nullcontext()
    with torch.no_grad(), warnings.catch_warnings(), mode:
        warnings.simplefilter("ignore")
        by_op = analysis.by_operator()  # runs the trace; the rest reads its cached result
        unsupported = analysis.unsupported_ops()
        by_module = analysis.by_module()
    counts = {op: int(round(n)) for op, n in sorted(by_op.items())}
    return MacCount(
        total=sum(counts.values()),
        by_op=counts,
        uncounted=sorted(unsupported),
        ignored=sorted(seen_ignored),
        traced_on=device.type,
        by_module=_unwrapped(by_module),
    )


def _unwrapped(by_module: dict[str, float]) -> dict[str, int]:
    """fvcore's per-module counts with the tracing wrapper taken off: ``inner.a.b`` → ``a.b``,
    ``inner`` → ``""``."""
    out: dict[str, int] = {}
    for name, n in by_module.items():
        if name == "inner" or name.startswith("inner."):
            out[name[len("inner.") :] if name != "inner" else ""] = int(round(n))
    return out


def _scaled(count: MacCount, factor: int) -> MacCount:
    by_op = {op: n * factor for op, n in count.by_op.items()}
    by_module = {m: n * factor for m, n in count.by_module.items()}
    return MacCount(
        sum(by_op.values()), by_op, count.uncounted, count.ignored, count.traced_on, by_module
    )


def count_macs(
    module: nn.Module,
    inputs: tuple | torch.Tensor,
    *,
    device: str = "meta",
    count_norms: bool = False,
    extra_handles: dict[str, Handle | None] | None = None,
) -> MacCount:
    """MACs of ``module(*inputs)``, traced with fvcore plus our handles.

    ``inputs`` may mix tensors with other values (``(x, H, W)``): only tensors are traced, the
    rest are baked in as constants. The module is never modified; its train/eval mode is kept
    (it matters only for batch norm with ``count_norms``). ``extra_handles`` maps an operator
    (``"aten::cdist"``) to an fvcore handle, or to ``None`` to ignore it; it overrides ours.
    With ``device="meta"`` (default) nothing the size of an activation is allocated; on
    failure the count is redone on CPU at batch 1 and scaled by the batch (``traced_on="cpu"``).
    """
    leaves, spec = tree_flatten(inputs if isinstance(inputs, tuple) else (inputs,))
    dev = torch.device(device)

    def trace(mod: nn.Module, args: list[Any], on: torch.device) -> MacCount:
        return _trace_count(mod, args, spec, on, count_norms, extra_handles)

    if dev.type != "meta":
        args = [_materialize(v, dev) if isinstance(v, torch.Tensor) else v for v in leaves]
        return trace(_on_device(module, dev), args, dev)
    try:
        args = [v.to("meta") if isinstance(v, torch.Tensor) else v for v in leaves]
        return trace(_meta_copy(module), args, dev)
    except Exception as meta_error:  # any refusal on meta means: count for real, small
        logging.getLogger(__name__).debug("meta trace failed, counting on cpu: %s", meta_error)
        cpu = torch.device("cpu")
        batch = _batch_of(leaves)
        try:
            count = trace(_on_device(module, cpu), [_first_of(v, batch, cpu) for v in leaves], cpu)
        except Exception as cpu_error:
            raise cpu_error from meta_error
        return _scaled(count, batch)


def _batch_of(leaves: Iterable[Any]) -> int:
    for v in leaves:
        if isinstance(v, torch.Tensor) and v.dim() > 0:
            return int(v.shape[0])
    return 1


def _first_of(v: Any, batch: int, device: torch.device) -> Any:
    if not isinstance(v, torch.Tensor):
        return v
    if batch > 1 and v.dim() > 0 and v.shape[0] == batch:
        v = v[:1]
    return _materialize(v, device)


def layer_macs(
    module: nn.Module, H: int, W: int, batch: int = 1, *, count_norms: bool = True
) -> MacCount:
    """Traced MACs of an attention layer on an ``H x W`` token map (``x: (batch, H*W, dim)``).

    Norms are counted by default because the published single-layer figures were made with
    fvcore, which charges a LayerNorm 5 MACs per element: SRA (dim 768, sr 2, 14x14) is
    419.56M only with its reduced-map LayerNorm (419.37M without), and the layers' analytic
    ``macs()`` follow the published figures.
    """
    dim = getattr(module, "dim", None)
    if not isinstance(dim, int):
        raise TypeError(f"{type(module).__name__} has no integer `dim`; use count_macs")
    x = torch.empty(batch, H * W, dim, device="meta")
    return count_macs(module, (x, H, W), count_norms=count_norms)


_TRACER_WARM = False


def warm_tracer() -> None:
    """Pay the tracer's one-off start-up (about a second: fvcore and TorchScript initialise on
    the first trace of a process) on a tiny module, so it is not charged to a case's budget."""
    global _TRACER_WARM
    if not _TRACER_WARM:
        count_macs(nn.Linear(2, 2), (torch.zeros(1, 2),))
        _TRACER_WARM = True
