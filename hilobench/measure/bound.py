"""Why a step is as fast as it is: ``compute``, ``memory`` or ``launch/overhead`` bound.

Three shares of a step, each in [0, 1] (docs/bound.md has the formulas and their limits):

* ``busy``: the share of the step's wall time the device spends in operators — on CUDA the
  sum of kernel times ÷ wall, on the CPU operator self time ÷ wall — from one call under
  ``torch.profiler``, outside the timed samples;
* ``compute``: achieved MAC/s (the row's MACs × calls/s) ÷ the GEMM peak (roofline.py);
* ``memory``: achieved bytes/s (the traced tensor bytes of one call: every operator's inputs
  and outputs) ÷ the copy bandwidth peak (bandwidth.py).

A device idle for half the step or more is ``launch/overhead`` bound whatever the kernels do;
otherwise the larger of the other two shares names the roof the step is nearer to. The
classification is :func:`classify`, a pure function; :func:`trace_step` measures the raw
figures and :func:`bound_columns` turns them into row columns.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = [
    "BUSY_MIN",
    "MAX_STEP_S",
    "classify",
    "shares",
    "reserve_s",
    "trace_step",
    "bound_columns",
]

#: Below this busy share the device waits on the host more than it works.
BUSY_MIN = 0.5
#: Steps longer than this are not traced again, whatever the budget.
MAX_STEP_S = 5.0
#: The diagnosis may take at most this share of the budget left after the memory pass.
MAX_BUDGET_SHARE = 0.5
#: Plain calls one traced call costs, about (profiler and byte-counting overhead).
TRACE_COST_CALLS = 2.5
#: Bound names, in the order the table explains them.
BOUNDS = ("compute", "memory", "launch/overhead")


def classify(busy: float | None, compute: float | None, memory: float | None) -> str | None:
    """The bound a step's shares point to; None when the busy share is unknown, or when
    neither roof can be judged."""
    if busy is None:
        return None
    if busy < BUSY_MIN:
        return "launch/overhead"
    if compute is None and memory is None:
        return None
    return "compute" if (compute or 0.0) >= (memory or 0.0) else "memory"


def shares(
    *,
    calls_per_s: float | None,
    macs_per_call: float | None,
    bytes_per_call: float | None,
    peak_macs_per_s: float | None,
    peak_bytes_per_s: float | None,
) -> tuple[float | None, float | None]:
    """(compute share, memory share) of a step run ``calls_per_s`` times a second."""
    compute = memory = None
    if calls_per_s and macs_per_call and peak_macs_per_s:
        compute = macs_per_call * calls_per_s / peak_macs_per_s
    if calls_per_s and bytes_per_call and peak_bytes_per_s:
        memory = bytes_per_call * calls_per_s / peak_bytes_per_s
    return compute, memory


def _tensor_bytes(values: Any) -> int:
    flat, _ = tree_flatten(values)
    return sum(t.numel() * t.element_size() for t in flat if isinstance(t, torch.Tensor))


class _ByteCounter(TorchDispatchMode):
    """Sums the bytes every operator reads (its tensor inputs) and writes (its outputs). View
    operators move nothing and are skipped."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not getattr(func, "is_view", False):
            self.total += _tensor_bytes((args, kwargs)) + _tensor_bytes(out)
        return out


def traced_bytes(step: Callable[[], Any]) -> int:
    """Bytes one call of ``step`` reads and writes, operator by operator."""
    with _ByteCounter() as counter:
        step()
    return counter.total


def _kernel_us(events: Any, cuda: bool) -> float:
    """Microseconds the device spent in operators: kernels on CUDA, operator self time on the
    CPU (summed over the events the profiler kept)."""
    total = 0.0
    for e in events:
        dev = str(getattr(e, "device_type", "")).rsplit(".", 1)[-1]
        if cuda and dev == "CUDA":
            total += e.time_range.elapsed_us()
        elif not cuda and dev == "CPU":
            total += float(e.self_cpu_time_total)
    return total


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """The profiler's C++ side prints start/stop and device-probe lines on fd 2 for every
    session; a measuring command's output must not carry them (Python errors still raise)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def busy_share(step: Callable[[], Any], device: str) -> tuple[float, float]:
    """(busy share, wall seconds) of one call of ``step`` under the profiler."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.startswith("cuda")
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    with _quiet_stderr(), profile(activities=acts) as prof:
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        wall = time.perf_counter() - t0
    busy_us = _kernel_us(prof.events(), cuda)
    return min(1.0, busy_us * 1e-6 / wall) if wall > 0 else 0.0, wall


def reserve_s(call_s: float, left_s: float) -> float | None:
    """Seconds of the budget left to keep for the two traced calls (each costs about
    :data:`TRACE_COST_CALLS` plain ones); None when a call is slower than
    :data:`MAX_STEP_S` or they would take over :data:`MAX_BUDGET_SHARE` of what is left."""
    need = TRACE_COST_CALLS * call_s
    if call_s > MAX_STEP_S or need > MAX_BUDGET_SHARE * left_s:
        return None
    return need


def skipped(call_s: float, left_s: float) -> dict[str, Any]:
    """The note of a row whose diagnosis did not fit (:func:`reserve_s`)."""
    if call_s > MAX_STEP_S:
        return {"bound_note": f"not traced: a step takes {call_s:.1f} s (> {MAX_STEP_S:g} s)"}
    return {
        "bound_note": f"not traced: two more calls (~{TRACE_COST_CALLS * call_s:.2f} s) would "
        f"take over {MAX_BUDGET_SHARE:.0%} of the {left_s:.2f} s of budget left"
    }


def trace_step(step: Callable[[], Any], device: str) -> dict[str, Any]:
    """The raw columns of the diagnosis: two untimed calls, one under the profiler (busy
    share) and one counting bytes."""
    busy, _ = busy_share(step, device)
    # a replayed CUDA graph dispatches no operators: its bytes are those of the captured step
    eager = getattr(step, "eager", step)
    return {"bound_busy": round(busy, 4), "traced_bytes": traced_bytes(eager)}


def bound_columns(
    row: dict[str, Any],
    peak_macs_per_s: float | None,
    peak_bytes_per_s: float | None,
    macs_factor: float = 1.0,
) -> dict[str, Any]:
    """The diagnosis of a measured row: its shares and bound. ``macs_factor`` scales the
    forward MACs to what the step computes (3 for a training step: forward + two backward
    products); the shares use the row's median calls per second."""
    tp, batch = row.get("throughput_median"), row.get("batch")
    if row.get("bound_busy") is None or not tp or not batch:
        return {}
    lpc = int(row.get("layers_per_call") or 1)
    calls_per_s = tp / batch / lpc  # throughput is per layer: a call runs lpc of them
    macs = row.get("macs") or row.get("macs_traced")
    macs_call = macs * batch * lpc * macs_factor if macs else None
    compute, memory = shares(
        calls_per_s=calls_per_s,
        macs_per_call=macs_call,
        bytes_per_call=row.get("traced_bytes"),
        peak_macs_per_s=peak_macs_per_s,
        peak_bytes_per_s=peak_bytes_per_s,
    )
    return {
        "bound": classify(row["bound_busy"], compute, memory),
        "bound_compute": None if compute is None else round(compute, 4),
        "bound_memory": None if memory is None else round(memory, 4),
        "peak_bytes_per_s": peak_bytes_per_s,
    }


def add_bound(row: Any, peak_macs_per_s: float | None) -> dict[str, Any]:
    """Shares and bound of a traced, timed row. The bandwidth peak is measured with the GEMM
    peak (once per machine, cached) and skipped with it (``--no-roofline``)."""
    from hilobench.measure.bandwidth import bandwidth_peak

    bw = bandwidth_peak(str(row.get("device") or "cpu")) if peak_macs_per_s else None
    factor = 3.0 if row.get("mode") == "train" else 1.0  # forward + two backward products
    return bound_columns(dict(row), peak_macs_per_s, bw, factor)
