"""The runtime a case runs under (``--backend``): one module per backend, one small interface.

A backend module registers ``prepare(module, inputs, case, eager_step) -> Prepared`` with
:func:`register_backend`: from the built module (on its device, in eval mode for inference)
and the case's resident inputs it returns the step to time and the columns that say what that
step covers. Which backends exist, their devices, dtypes and the pip extra that installs them
is one table, :data:`hilobench.core.options.BACKENDS`; a backend's module is imported only when a
case runs under it (ONNX, OpenVINO and TensorRT take seconds to import).

:func:`prepare_case` is what ``bench`` calls: it times the preparation (export, compile) into
``prepare_s``, outside the timed step, and checks parity: the backend's output against eager's
on the case's input, ``backend_max_rel_err`` = max |backend - eager| / max |eager|. Beyond
:data:`TOLERANCE` of the case's dtype the row's status is ``mismatch``, so a fast wrong runtime
never wins a table. A runtime that cannot run an operation raises :class:`Unsupported`, which
becomes a row whose status is ``unsupported`` and whose message names the op.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hilobench.core import options
from hilobench.core.case import Case
from hilobench.core.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

#: Largest parity error per dtype: float32 runtimes reorder sums (measured ~1e-7 relative);
#: half precisions round every product (bfloat16 keeps 8 mantissa bits, float16 11).
TOLERANCE: dict[str, float] = {"float32": 1e-4, "bfloat16": 5e-2, "float16": 1e-2}
#: Backends that run the model in PyTorch (its allocator sees their memory; they can train).
TORCH_BACKENDS = ("eager", "compile")


@dataclass
class Prepared:
    """A backend's answer: the timed step (inputs and outputs stay on the device between
    calls), how to read a step's result as torch tensors for parity, and the row columns
    that say what was prepared and timed."""

    step: Callable[[], Any]
    outputs: Callable[[Any], list[Any]]
    columns: dict[str, Any] = field(default_factory=dict)


class Unsupported(Exception):
    """A runtime cannot run an operation of the model: the row's status is ``unsupported``."""

    status = "unsupported"


Prepare = Callable[["nn.Module", tuple[Any, ...], Case, Callable[[], Any]], Prepared]
_REGISTRY: dict[str, Prepare] = {}


def register_backend(name: str) -> Callable[[Prepare], Prepare]:
    """Register ``prepare`` for backend ``name`` (which the table must declare)."""
    if name not in options.BACKENDS:
        raise ValueError(f"backend {name!r} is not in options.BACKENDS")

    def deco(fn: Prepare) -> Prepare:
        _REGISTRY[name] = fn
        return fn

    return deco


def get_backend(name: str) -> Prepare:
    """The ``prepare`` of backend ``name``, importing its module on first use."""
    if name not in _REGISTRY:
        importlib.import_module(f"hilobench.backends.{name}")
    return _REGISTRY[name]


def check_name(name: object) -> str:
    """A backend name from the table; ConfigError naming the allowed ones otherwise."""
    if name not in options.BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose from: {', '.join(options.BACKENDS)}")
    return str(name)


def check_case(case: Case) -> None:
    """Refuse, in one line, a case its backend cannot run here: device, dtype, training, or a
    package its extra installs missing."""
    spec = options.BACKENDS[check_name(case.backend)]
    device = case.device.split(":")[0]
    if device not in spec.devices:
        raise ConfigError(
            f"backend {spec.name!r} runs on {', '.join(spec.devices)} only, not on {device}"
        )
    if case.mode == "train" and not spec.train:
        trains = ", ".join(b.name for b in options.BACKENDS.values() if b.train)
        raise ConfigError(
            f"backend {spec.name!r} runs inference only; training (--train) takes {trains}"
        )
    if case.dtype not in spec.dtypes:
        raise ConfigError(
            f"backend {spec.name!r} runs dtype {', '.join(spec.dtypes)}, not {case.dtype}"
        )
    missing = [p for p in spec.needs if importlib.util.find_spec(p) is None]
    if missing:
        raise ConfigError(
            f"backend {spec.name!r} needs {', '.join(missing)}: "
            f"pip install 'hilobench[{spec.extra}]'"
        )


def tensors_of(out: Any) -> list[Any]:
    """The tensors of a module's output (a tensor, or tuples / lists / dicts of them)."""
    import torch  # the caller has it loaded already

    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in tensors_of(o)]
    return []


def max_rel_err(ref: list[Any], got: list[Any]) -> float:
    """max |got - ref| / max |ref| over all outputs (relative to the output's scale, so a
    value near zero does not blow it up); inf where the outputs do not line up."""
    if len(ref) != len(got) or not ref:
        return float("inf")
    diff = scale = 0.0
    for r, g in zip(ref, got, strict=True):
        if tuple(r.shape) != tuple(g.shape):
            return float("inf")
        r, g = r.detach().double().cpu(), g.detach().double().cpu()
        diff = max(diff, float((r - g).abs().max()))
        scale = max(scale, float(r.abs().max()))
    return diff / scale if scale > 0 else diff


def prepare_case(
    case: Case, module: nn.Module, inputs: tuple[Any, ...], eager_step: Callable[[], Any], row: Any
) -> Callable[[], Any]:
    """The step to time under ``case.backend``; adds prepare_s, parity and what was timed to
    ``row`` (eager, the reference: prepare_s 0 and parity error 0 by definition)."""
    prepare = get_backend(case.backend)
    if case.backend == "eager":  # the reference itself: nothing prepared, no difference
        prepared = prepare(module, inputs, case, eager_step)
        row.update(prepared.columns, prepare_s=0.0)
        if case.mode == "infer":
            row["backend_max_rel_err"] = 0.0
        return prepared.step
    import torch

    ref = tensors_of(eager_step()) if case.mode == "infer" else None  # before anything is swapped
    sync = torch.cuda.synchronize if case.device.startswith("cuda") else (lambda: None)
    t = time.perf_counter()
    prepared = prepare(module, inputs, case, eager_step)
    out = prepared.step()  # the first call: compiles, builds, allocates
    sync()
    row["prepare_s"] = round(time.perf_counter() - t, 3)
    row.update(prepared.columns)
    if ref is not None:
        err = max_rel_err(ref, prepared.outputs(out))
        row["backend_max_rel_err"] = err
        row["backend_tolerance"] = TOLERANCE[case.dtype]
        if not err <= TOLERANCE[case.dtype]:
            row["status"] = "mismatch"
            row["message"] = (
                f"{case.backend} output differs from eager by {err:.3g} (relative), "
                f"beyond the {case.dtype} tolerance {TOLERANCE[case.dtype]:g}"
            )
    return prepared.step


def _vm_hwm() -> int | None:
    """The process's resident-set high-water mark (VmHWM), in bytes (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def runtime_memory(step: Callable[[], Any], device: str) -> dict[str, Any]:
    """Memory of one step under a runtime, whose allocations torch cannot see: on the CPU the
    process's RSS peak during the step (its high-water mark reset first, so export-time peaks
    do not count), on CUDA the device memory in use after it (cudaMemGetInfo, as NVML
    reports it: every process's). ``mem_source`` labels which."""
    from hilobench.measure import memory

    if device.startswith("cuda"):
        import torch

        step()
        torch.cuda.synchronize(device)
        free, total = torch.cuda.mem_get_info(device)
        return {"peak_mem_bytes": total - free, "peak_rss_bytes": None, "mem_source": "cuda_used"}
    rise = memory.peak_rss_rise(step)
    peak = _vm_hwm() if rise is not None else None
    if peak is None:  # no resettable high-water mark here: the figure would be the past's
        step()
        return {"peak_rss_bytes": None, "mem_source": "none"}
    return {"peak_mem_bytes": peak, "peak_rss_bytes": rise, "mem_source": "process_rss_peak"}
