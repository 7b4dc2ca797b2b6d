"""Run one case under ``torch.profiler``: the measurements a breakdown is made of.

The step is the one ``layer`` / ``model`` time (``bench.make_step``: inference, or forward +
loss + backward + AdamW step), built the same way. Four passes, in this order:

1. the traced MAC count per module (forward, batch 1, scaled by the batch);
2. one step under the tensor-memory tracker with module hooks: each module's forward peak
   (live tensor bytes above those live when it was entered);
3. ``steps`` rounds of: one step timed with no hooks and no profiler (the *measured* step
   time the parts must add up to), then one step under a profiler session of its own with
   every module call in a ``record_function`` range opened and closed by forward hooks. The
   rounds alternate so that a machine whose load drifts weighs on both alike; the Chrome trace
   is the last profiled step's.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hilobench.core.case import Case
from hilobench.core.errors import ConfigError
from hilobench.measure import memory, timing
from hilobench.measure.flops import MacCount, count_macs
from hilobench.profile.attribute import MODULE_PREFIX, STEP, Attribution, attribute, merge
from hilobench.run.engine import Subject, base_row, build_subject, prepare_step, warm_process


@dataclass
class Measured:
    """Everything measured about one case; :mod:`hilobench.profile.breakdown` reads it."""

    case: Case
    subject: Subject
    attribution: Attribution
    #: step time without hooks or profiler: the mean of the steps timed between the profiled
    #: ones, and each of them (seconds per step)
    step_s: float
    step_samples: list[float]
    #: traced forward MACs of one step (the whole batch) per module name ("" = the root)
    macs: dict[str, int]
    macs_by_op: dict[str, int]
    #: forward peak of live tensor bytes above entry, per module name
    peaks: dict[str, int]
    threads: int
    trace_path: Path | None = None


def _sync(device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        return torch.cuda.synchronize
    return lambda: None


@contextmanager
def module_ranges(module: nn.Module) -> Iterator[None]:
    """Every module call inside a ``record_function`` range named after the module."""
    stack: list[Any] = []
    handles = []

    def opener(name: str) -> Callable[..., None]:
        def pre(mod: nn.Module, args: Any) -> None:
            rf = torch.autograd.profiler.record_function(MODULE_PREFIX + name)
            rf.__enter__()
            stack.append(rf)

        return pre

    def close(mod: nn.Module, args: Any, out: Any) -> None:
        if stack:
            stack.pop().__exit__(None, None, None)

    for name, m in module.named_modules():
        handles.append(m.register_forward_pre_hook(opener(name)))
        handles.append(m.register_forward_hook(close))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        while stack:  # a forward that raised left its ranges open
            stack.pop().__exit__(None, None, None)


def module_peaks(module: nn.Module, step: Callable[[], Any]) -> dict[str, int]:
    """Per module, the peak of live tensor bytes during its forward above those live when it
    was entered (the tensor-memory tracker's count, at operator granularity), over one step."""
    tracker = memory.TensorMemoryTracker()
    stack: list[tuple[str, int, int]] = []
    peaks: dict[str, int] = {}
    handles = []

    def opener(name: str) -> Callable[..., None]:
        def pre(mod: nn.Module, args: Any) -> None:
            tracker._apply_frees()
            stack.append((name, tracker.live, tracker.peak))
            tracker.peak = tracker.live

        return pre

    def close(mod: nn.Module, args: Any, out: Any) -> None:
        if not stack:
            return
        name, base, outer = stack.pop()
        peaks[name] = max(peaks.get(name, 0), tracker.peak - base)
        tracker.peak = max(outer, tracker.peak)

    for name, m in module.named_modules():
        handles.append(m.register_forward_pre_hook(opener(name)))
        handles.append(m.register_forward_hook(close))
    try:
        with tracker:
            step()
    finally:
        for h in handles:
            h.remove()
    return peaks


def _profiler(device: str) -> Any:
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device.startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    return profile(activities=activities)


#: What the profiler's native library (kineto) logs to stderr at every session's start and
#: stop, whatever its log level: ``USDT:<date> <pid>:<tid> <file>.cpp:<line>] profiler_start``.
KINETO_NOISE = re.compile(r"^(USDT|STAGE):\d{4}-\d\d-\d\d [\d:]+ \d+:\d+ \S+\.cpp:\d+\] ")


@contextmanager
def quiet_profiler_log() -> Iterator[None]:
    """Hold back the profiler's native log lines: the process's stderr (file descriptor 2,
    where C++ writes) goes to a temporary file meanwhile, and every other line written there
    is passed on afterwards."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [ln for ln in held.read().splitlines(keepends=True) if not _noise(ln)]
            if kept:
                os.write(2, b"".join(kept))


def _noise(line: bytes) -> bool:
    return bool(KINETO_NOISE.match(line.decode("utf-8", "replace")))


def _profiled_step(
    module: nn.Module, step: Callable[[], Any], sync: Callable[[], None], device: str
) -> Any:
    """One step with module ranges under a profiler session of its own (its native log lines
    held back); the profiler."""
    with quiet_profiler_log(), module_ranges(module), _profiler(device) as prof:
        with torch.autograd.profiler.record_function(STEP):
            step()
            sync()
    return prof


def profile_case(case: Case, *, steps: int, trace_path: Path | None = None) -> Measured:
    """Measure ``case`` as described in the module docstring."""
    if case.opts.get("cuda_graphs"):  # a replay runs no operator a module range could hold
        raise ConfigError(
            "profile cannot use --cuda-graphs: a replayed graph runs no operators to attribute "
            "to modules; drop --cuda-graphs (the kernels' share is in the summary line)"
        )
    threads = timing.set_threads(case.threads)
    subject = build_subject(case)
    warm_process()
    subject.module.eval()  # as bench.run_case counts: BatchNorm at its inference count
    per_image = count_macs(subject.module, subject.make_inputs("cpu", 1), count_norms=True)
    macs = _scaled(per_image, case.batch)
    step, _ = prepare_step(case, subject, base_row(case))
    sync = _sync(case.device)
    step()  # warm-up: first-call allocations and kernel choices
    sync()
    peaks = module_peaks(subject.module, step)
    sync()
    _profiled_step(subject.module, step, sync, case.device)  # the profiler's own start-up
    plain: list[float] = []
    parts: list[Attribution] = []
    prof = None
    for _ in range(steps):  # alternate, so that a drifting machine load hits both alike
        t0 = time.perf_counter()
        step()
        sync()
        plain.append(time.perf_counter() - t0)
        prof = _profiled_step(subject.module, step, sync, case.device)
        parts.append(attribute(prof.events()))
    if trace_path is not None and prof is not None:
        trace_path.parent.mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(str(trace_path))
    return Measured(
        case=case,
        subject=subject,
        attribution=merge(parts),
        step_s=sum(plain) / len(plain),
        step_samples=plain,
        macs=macs.by_module,
        macs_by_op=macs.by_op,
        peaks=peaks,
        threads=threads,
        trace_path=trace_path,
    )


def _scaled(count: MacCount, batch: int) -> MacCount:
    return MacCount(
        total=count.total * batch,
        by_op={k: v * batch for k, v in count.by_op.items()},
        by_module={k: v * batch for k, v in count.by_module.items()},
    )
