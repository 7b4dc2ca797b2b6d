"""Profiler events → time per module, per operator and per phase, adding up to the step time.

The profiled step runs with one ``record_function`` range per module call (``MODULE_PREFIX`` +
its name, opened and closed by forward hooks), inside one ``STEP`` range per step. Backward work
has no module range: autograd runs it later, as ``evaluate_function`` events that carry the
sequence number of the forward operator that created them, so each one is charged to the module
that ran that operator. The optimizer has ranges of its own (``Optimizer.step#…``).

Every instant of a step belongs to exactly one part: the innermost range covering it (the one
that started last), or ``UNATTRIBUTED`` when none does (Python between calls, hooks, the
profiler itself). So the parts add up to the step ranges by construction; how well they match a
step timed without the profiler is what the caller checks and prints.
"""

from __future__ import annotations

import bisect
import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

MODULE_PREFIX = "hilobench.module::"
STEP = "hilobench::step"
EVALUATE = "autograd::engine::evaluate_function: "
OPTIMIZER_PREFIXES = ("Optimizer.step", "Optimizer.zero_grad")

#: Parts that are not a module.
OPTIMIZER = "optimizer (zero_grad, step)"
OUTSIDE = "outside modules (loss, casts)"
AUTOGRAD_OTHER = "autograd (grad accumulation, other)"
UNATTRIBUTED = "unattributed (Python, hooks, profiler)"
NOT_IN_OP = "not in any operator (Python, hooks, profiler)"

FORWARD, BACKWARD, OPTIM = "forward", "backward", "optimizer"


@dataclass(frozen=True)
class Span:
    """One labelled interval of the timeline (microseconds)."""

    start: float
    end: float
    label: str
    phase: str


@dataclass
class Attribution:
    """Seconds per step, averaged over the profiled steps."""

    steps: int
    #: step range durations as the profiler saw them, seconds each
    step_s: list[float]
    #: label → phase → seconds per step (labels: module names, or the constants above)
    parts: dict[str, dict[str, float]] = field(default_factory=dict)
    #: operator (or autograd node, or optimizer range) → seconds per step, and calls per step
    ops: dict[str, float] = field(default_factory=dict)
    op_calls: dict[str, float] = field(default_factory=dict)
    #: operator → the phase it ran in (forward, backward, optimizer)
    op_phase: dict[str, str] = field(default_factory=dict)
    #: label → device (CUDA) kernel seconds per step; empty on the CPU
    device: dict[str, float] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        """Mean profiled step time; the parts sum to it."""
        return sum(self.step_s) / max(1, len(self.step_s))


def _start(e: Any) -> float:
    return float(e.time_range.start)


def _end(e: Any) -> float:
    return float(e.time_range.end)


def _ancestors(e: Any) -> Iterable[Any]:
    p = e.cpu_parent
    while p is not None:
        yield p
        p = p.cpu_parent


def _on_cpu(e: Any) -> bool:
    return getattr(getattr(e, "device_type", None), "name", "CPU") == "CPU"


def _is_op(name: str) -> bool:
    return "::" in name and not name.startswith(("hilobench", "autograd::engine", "profiler"))


def _module_of(e: Any) -> str | None:
    for a in _ancestors(e):
        if a.name.startswith(MODULE_PREFIX):
            return str(a.name[len(MODULE_PREFIX) :])
    return None


def _in(e: Any, prefixes: tuple[str, ...]) -> bool:
    return any(a.name.startswith(prefixes) for a in _ancestors(e))


def sweep(spans: Sequence[Span], lo: float, hi: float) -> list[Span]:
    """The timeline ``[lo, hi)`` cut into segments, each labelled by the innermost span covering
    it (the latest-starting one), or ``UNATTRIBUTED``; the segments tile ``[lo, hi)`` exactly."""
    inside = sorted(
        (s for s in spans if s.end > lo and s.start < hi), key=lambda s: (s.start, -s.end)
    )
    cuts = sorted({lo, hi, *(max(lo, s.start) for s in inside), *(min(hi, s.end) for s in inside)})
    out: list[Span] = []
    heap: list[tuple[float, int]] = []  # (-start, -index): the latest-starting, innermost on top
    i = 0
    for a, b in zip(cuts, cuts[1:], strict=False):
        while i < len(inside) and inside[i].start <= a:
            heapq.heappush(heap, (-inside[i].start, -i))
            i += 1
        while heap and inside[-heap[0][1]].end <= a:
            heapq.heappop(heap)
        top = inside[-heap[0][1]] if heap else None
        label, phase = (top.label, top.phase) if top else (UNATTRIBUTED, "")
        if out and out[-1].label == label and out[-1].phase == phase and out[-1].end == a:
            out[-1] = Span(out[-1].start, b, label, phase)
        else:
            out.append(Span(a, b, label, phase))
    return out


def _spans(events: Sequence[Any]) -> tuple[list[Span], list[Span]]:
    """(part spans, operator spans) of the profiled events."""
    parts: list[Span] = []
    ops: list[Span] = []
    made_by: dict[tuple[int, int], str] = {}  # (thread, sequence nr) of a forward op → label
    backward = []
    for e in events:
        if not _on_cpu(e):  # a kernel: its time is read through the op that launched it
            continue
        name = str(e.name)
        if name.startswith(MODULE_PREFIX):
            parts.append(Span(_start(e), _end(e), name[len(MODULE_PREFIX) :], FORWARD))
        elif name.startswith(OPTIMIZER_PREFIXES):
            if not _in(e, OPTIMIZER_PREFIXES):
                parts.append(Span(_start(e), _end(e), OPTIMIZER, OPTIM))
                ops.append(Span(_start(e), _end(e), name.split("#")[-1], OPTIM))
        elif name.startswith(EVALUATE):
            if not _in(e, (EVALUATE,)):
                backward.append(e)
                ops.append(Span(_start(e), _end(e), name[len(EVALUATE) :], BACKWARD))
        elif _is_op(name) and not _in(e, (EVALUATE, *OPTIMIZER_PREFIXES)):
            module = _module_of(e)
            if e.sequence_nr >= 0:
                made_by[(e.thread, e.sequence_nr)] = OUTSIDE if module is None else module
            top = not any(_is_op(str(a.name)) for a in _ancestors(e))
            if top:
                ops.append(Span(_start(e), _end(e), name, FORWARD))
                if module is None:
                    parts.append(Span(_start(e), _end(e), OUTSIDE, FORWARD))
    for e in backward:
        key = (e.fwd_thread, e.sequence_nr)
        label = made_by.get(key, AUTOGRAD_OTHER) if e.sequence_nr >= 0 else AUTOGRAD_OTHER
        parts.append(Span(_start(e), _end(e), label, BACKWARD))
    return parts, ops


def _kernel_seconds(e: Any) -> float:
    """Device time of the kernels this CPU event launched itself (microseconds → seconds)."""
    kernels = getattr(e, "kernels", None) or []
    return sum(float(getattr(k, "duration", 0.0)) for k in kernels) / 1e6


def attribute(events: Sequence[Any]) -> Attribution:
    """Average per-step time of every part and operator over the ``STEP`` ranges in ``events``
    (a ``torch.profiler`` event list)."""
    steps = sorted((e for e in events if e.name == STEP and _on_cpu(e)), key=_start)
    if not steps:
        raise ValueError(f"no {STEP!r} range among the profiled events")
    part_spans, op_spans = _spans(events)
    n = len(steps)
    parts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    ops: dict[str, float] = defaultdict(float)
    calls: dict[str, float] = defaultdict(float)
    phase: dict[str, str] = {}
    segments: list[Span] = []
    for st in steps:
        lo, hi = _start(st), _end(st)
        segs = sweep(part_spans, lo, hi)
        segments.extend(segs)
        for s in segs:
            parts[s.label][s.phase or FORWARD] += (s.end - s.start) / 1e6 / n
        for s in sweep(op_spans, lo, hi):
            name = NOT_IN_OP if s.label == UNATTRIBUTED else s.label
            ops[name] += (s.end - s.start) / 1e6 / n
            phase[name] = s.phase
        for s in op_spans:
            if lo <= s.start < hi:
                calls[s.label] += 1 / n
    device: dict[str, float] = defaultdict(float)
    starts = [s.start for s in segments]
    lo_all, hi_all = _start(steps[0]), _end(steps[-1])
    for e in events:
        secs = _kernel_seconds(e) if _on_cpu(e) else 0.0
        if secs and lo_all <= _start(e) <= hi_all:
            at = bisect.bisect_right(starts, _start(e)) - 1
            label = segments[at].label if at >= 0 and _start(e) < segments[at].end else OUTSIDE
            device[label] += secs / n
    return Attribution(
        steps=n,
        step_s=[(_end(s) - _start(s)) / 1e6 for s in steps],
        parts={k: dict(v) for k, v in parts.items()},
        ops=dict(ops),
        op_calls=dict(calls),
        op_phase=phase,
        device=dict(device),
    )


def merge(parts: Sequence[Attribution]) -> Attribution:
    """Attributions of separate profiler sessions as one: per-step means over all their steps."""
    n = sum(a.steps for a in parts)

    def mean(get: Callable[[Attribution], dict[str, float]]) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for a in parts:
            for k, v in get(a).items():
                out[k] += v * a.steps / n
        return dict(out)

    labels = {k for a in parts for k in a.parts}
    return Attribution(
        steps=n,
        step_s=[s for a in parts for s in a.step_s],
        parts={k: mean(_phases_of(k)) for k in sorted(labels)},
        ops=mean(lambda a: a.ops),
        op_calls=mean(lambda a: a.op_calls),
        op_phase={k: v for a in parts for k, v in a.op_phase.items()},
        device=mean(lambda a: a.device),
    )


def _phases_of(label: str) -> Callable[[Attribution], dict[str, float]]:
    def get(a: Attribution) -> dict[str, float]:
        return a.parts.get(label, {})

    return get
