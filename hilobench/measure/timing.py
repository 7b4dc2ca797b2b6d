"""Wall-clock timing that stays honest on noisy machines and asynchronous devices.

Principles: explicit thread count; warm up until call times are steady, not a fixed count;
``time.perf_counter`` around a region that is synchronised on CUDA (so the kernels, not just
their launch, are timed); many samples of a minimum duration within a time budget; and, when
variants are compared, interleaving them round by round so machine drift hits all equally.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil
import torch

__all__ = [
    "Rounds",
    "RoundDone",
    "Timing",
    "set_threads",
    "default_threads",
    "time_fn",
    "time_interleaved",
]

# Warm-up is steady when the medians of two consecutive windows of call times agree within
# this relative tolerance.
WARMUP_WINDOW = 3
WARMUP_TOL = 0.10
# Warm-up runs at least this fraction of the budget (bounded by the cap) ...
WARMUP_MIN_FRACTION = 0.05
# ... and at most this fraction of the budget unless ``warmup_max_s`` says otherwise.
WARMUP_MAX_FRACTION = 0.30
MAX_CALLS_PER_SAMPLE = 1_000_000


@dataclass
class Timing:
    """Raw result of timing one callable; summarise with :func:`stats.summarize`."""

    samples_s: list[float]
    calls_per_sample: int
    warmup_calls: int
    warmup_s: float
    total_s: float
    warmup_steady: bool = True
    order: list[int] = field(default_factory=list)
    """Position of this callable in each interleaved round (empty when not interleaved)."""
    capped: bool = False
    """The budget ran out before ``min_samples``: fewer samples, a wider interval."""


@dataclass
class Rounds:
    """The rounds an interleaved timing has finished: enough to continue it in another process
    (same calls per sample, the rotation going on where it stopped) or to summarise it."""

    samples: dict[str, list[float]]
    order: dict[str, list[int]]
    calls: dict[str, int]
    elapsed_s: float

    @property
    def n(self) -> int:
        return min((len(v) for v in self.samples.values()), default=0)


@dataclass
class RoundDone:
    """Progress after a round: rounds so far, the rounds expected in all, seconds left."""

    rounds: Rounds
    expected: int
    eta_s: float
    timings: dict[str, Timing]


def default_threads() -> int:
    """Physical cores available to this process: hyper-threads rarely help dense kernels.

    Uses psutil's physical core count (falling back to ``os.cpu_count()``), capped by the
    CPU affinity mask where the platform has one, so a pinned container is not oversubscribed.
    """
    n: int | None = None
    try:
        n = psutil.cpu_count(logical=False)
    except Exception:  # unsupported platform
        n = None
    n = n or os.cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        try:
            n = min(n, len(os.sched_getaffinity(0)))
        except OSError:
            pass
    return max(1, int(n))


def set_threads(n: int | None) -> int:
    """Set torch's intra-op thread count explicitly and return the count in effect.

    ``None`` uses :func:`default_threads`. Setting it explicitly (and recording the result)
    removes one hidden variable between runs and machines.
    """
    if n is None:
        n = default_threads()
    if int(n) < 1:
        raise ValueError(f"threads must be >= 1, got {n!r}")
    torch.set_num_threads(int(n))
    return torch.get_num_threads()


def _sync_for(device: str) -> Callable[[], None]:
    """A callable that waits for all queued work on ``device`` (a no-op on the CPU)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return lambda: torch.cuda.synchronize(dev)
    if dev.type == "mps":
        return torch.mps.synchronize
    if dev.type == "xpu":
        return lambda: torch.xpu.synchronize(dev)
    return lambda: None


def _timed_calls(fn: Callable[[], object], sync: Callable[[], None], k: int) -> float:
    """Seconds per call over ``k`` back-to-back calls, synchronised before and after.

    The garbage collector is paused inside the timed region so that a collection triggered by
    unrelated garbage does not land in one sample; it runs between samples instead.
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        sync()
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        sync()
        t1 = time.perf_counter()
    finally:
        if gc_was_enabled:
            gc.enable()
    return (t1 - t0) / k


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else 0.5 * (s[m - 1] + s[m])


def _warm_up(
    fn: Callable[[], object],
    sync: Callable[[], None],
    *,
    min_calls: int,
    min_s: float,
    max_s: float,
    strict: bool = False,
) -> tuple[list[float], float, bool]:
    """Call ``fn`` until its call time is steady; return (call times, seconds spent, steady).

    Runs at least ``min_calls`` calls and ``min_s`` seconds, then stops as soon as the medians
    of the last two windows of ``WARMUP_WINDOW`` calls agree within ``WARMUP_TOL``, or when
    ``max_s`` is spent (then ``steady`` is False and the caller can record it). With
    ``strict``, ``max_s`` is a cap even before ``min_calls``: a call longer than the cap gets
    one warm-up call, not ``min_calls`` of them, so a slow case stays within its budget.
    """
    times: list[float] = []
    if min_calls == 0 and max_s <= 0:
        return times, 0.0, False
    start = time.perf_counter()
    steady = False
    while True:
        times.append(_timed_calls(fn, sync, 1))
        elapsed = time.perf_counter() - start
        if elapsed >= max_s and (strict or len(times) >= min_calls):
            break
        if len(times) < min_calls or elapsed < min_s:
            continue
        if len(times) >= 2 * WARMUP_WINDOW:
            prev = _median(times[-2 * WARMUP_WINDOW : -WARMUP_WINDOW])
            last = _median(times[-WARMUP_WINDOW:])
            if prev > 0 and abs(last - prev) / prev <= WARMUP_TOL:
                steady = True
                break
    return times, time.perf_counter() - start, steady


def _calls_per_sample(call_s: float, min_sample_s: float) -> int:
    """Calls per sample so that one sample lasts at least ``min_sample_s``."""
    if min_sample_s <= 0 or call_s >= min_sample_s:
        return 1
    if call_s <= 0:
        return MAX_CALLS_PER_SAMPLE
    return int(min(MAX_CALLS_PER_SAMPLE, math.ceil(min_sample_s / call_s)))


def _calls_after_warm_up(warm_times: list[float], min_sample_s: float) -> int:
    """Calls per sample, sized by the steady warm-up calls; without a warm-up there is no call
    time to size by, so one call per sample."""
    if not warm_times:
        return 1
    return _calls_per_sample(_median(warm_times[-WARMUP_WINDOW:]), min_sample_s)


def _check_args(budget_s: float, min_samples: int, max_samples: int, min_warmup: int) -> None:
    if budget_s < 0:
        raise ValueError(f"budget_s must be >= 0, got {budget_s!r}")
    if min_samples < 1:
        raise ValueError(f"min samples must be >= 1, got {min_samples!r}")
    if max_samples < min_samples:
        raise ValueError(f"max samples ({max_samples}) must be >= min samples ({min_samples})")
    if min_warmup < 0:
        raise ValueError(f"min_warmup must be >= 0, got {min_warmup!r}")


def time_fn(
    fn: Callable[[], object],
    *,
    device: str = "cpu",
    budget_s: float = 5.0,
    min_samples: int = 9,
    max_samples: int = 500,
    min_warmup: int = 3,
    warmup_max_s: float | None = None,
    min_sample_s: float = 0.0,
    strict_budget: bool = False,
) -> Timing:
    """Time ``fn()`` (per call, in seconds) after warming it up until steady.

    ``budget_s`` covers warm-up and sampling together: sampling stops once the budget is spent
    and ``min_samples`` samples exist, or at ``max_samples``. With ``strict_budget`` the budget
    is a cap that beats ``min_samples``: sampling also stops as soon as the next sample would
    end past it, so long calls give fewer samples (at least one) and a wider interval rather
    than an overrun; ``Timing.capped`` says so. Warm-up is capped
    at ``warmup_max_s`` (default 30% of the budget). A call shorter than ``min_sample_s`` is
    repeated k times per sample and the per-call mean is reported, which keeps timer
    resolution and per-sample overhead out of the numbers.
    """
    _check_args(budget_s, min_samples, max_samples, min_warmup)
    sync = _sync_for(device)
    cap = WARMUP_MAX_FRACTION * budget_s if warmup_max_s is None else warmup_max_s
    start = time.perf_counter()
    w_times, w_s, steady = _warm_up(
        fn,
        sync,
        min_calls=min_warmup,
        min_s=min(WARMUP_MIN_FRACTION * budget_s, cap),
        max_s=cap,
        strict=strict_budget,
    )
    k = _calls_after_warm_up(w_times, min_sample_s)
    gc.collect()
    samples: list[float] = []
    while len(samples) < max_samples:
        samples.append(_timed_calls(fn, sync, k))
        elapsed = time.perf_counter() - start
        if len(samples) >= min_samples and elapsed >= budget_s:
            break
        if strict_budget and elapsed + samples[-1] * k > budget_s:  # next would overrun
            break
    return Timing(
        samples_s=samples,
        calls_per_sample=k,
        warmup_calls=len(w_times),
        warmup_s=w_s,
        total_s=time.perf_counter() - start,
        warmup_steady=steady,
        capped=len(samples) < min_samples,
    )


def time_interleaved(
    fns: dict[str, Callable[[], object]],
    *,
    device: str = "cpu",
    budget_s: float = 5.0,
    min_rounds: int = 9,
    max_rounds: int = 500,
    min_warmup: int = 3,
    warmup_max_s: float | None = None,
    min_sample_s: float = 0.0,
    strict_budget: bool = False,
    on_round: Callable[[RoundDone], None] | None = None,
    resume: Rounds | None = None,
) -> dict[str, Timing]:
    """Time several callables round by round (A B C, B C A, C A B, …).

    Interleaving makes machine drift (thermal, other tenants) hit every variant equally, and
    rotating the order each round removes position bias (e.g. the first call after another
    variant runs on cold caches). Sample i of every result comes from round i, so per-round
    ratios (:func:`stats.ratio_summary`) are valid. ``budget_s`` covers all warm-ups and rounds
    (a cap that beats ``min_rounds`` with ``strict_budget``, as in :func:`time_fn`);
    each warm-up is capped at ``warmup_max_s`` (default 30% of the budget split evenly).
    ``on_round`` hears after every round (so a caller can keep the rounds if it is stopped);
    ``resume`` continues rounds timed earlier, in another process: the callables are warmed
    up again but keep their calls per sample, and its time counts against the budget.
    """
    if not fns:
        raise ValueError("nothing to time: fns is empty")
    _check_args(budget_s, min_rounds, max_rounds, min_warmup)
    sync = _sync_for(device)
    names = list(fns)
    cap = WARMUP_MAX_FRACTION * budget_s / len(names) if warmup_max_s is None else warmup_max_s
    start = time.perf_counter() - (resume.elapsed_s if resume else 0.0)
    warm: dict[str, tuple[int, float, bool]] = {}
    ks: dict[str, int] = {}
    for name in names:
        w_times, w_s, steady = _warm_up(
            fns[name],
            sync,
            min_calls=min_warmup,
            min_s=min(WARMUP_MIN_FRACTION * budget_s / len(names), cap),
            max_s=cap,
            strict=strict_budget,
        )
        warm[name] = (len(w_times), w_s, steady)
        ks[name] = _calls_after_warm_up(w_times, min_sample_s)
        if resume is not None:
            ks[name] = resume.calls[name]
    gc.collect()
    samples: dict[str, list[float]] = {name: [] for name in names}
    order: dict[str, list[int]] = {name: [] for name in names}
    if resume is not None:
        for name in names:
            samples[name] = list(resume.samples[name][: resume.n])
            order[name] = list(resume.order[name][: resume.n])
    rounds = len(samples[names[0]])
    first, t_first = rounds, time.perf_counter()

    def timings(now: float) -> dict[str, Timing]:
        return {
            name: Timing(
                samples_s=list(samples[name]),
                calls_per_sample=ks[name],
                warmup_calls=warm[name][0],
                warmup_s=warm[name][1],
                total_s=now - start,
                warmup_steady=warm[name][2],
                order=list(order[name]),
                capped=rounds < min_rounds,
            )
            for name in names
        }

    while rounds < max_rounds:
        shift = rounds % len(names)
        t_round = time.perf_counter()
        for pos, name in enumerate(names[shift:] + names[:shift]):
            samples[name].append(_timed_calls(fns[name], sync, ks[name]))
            order[name].append(pos)
        rounds += 1
        now = time.perf_counter()
        if on_round is not None:
            per = (now - t_first) / (rounds - first)
            more = max(min_rounds - rounds, math.ceil(max(budget_s - (now - start), 0.0) / per))
            more = min(more, max_rounds - rounds)
            state = Rounds(
                {k: list(v) for k, v in samples.items()},
                {k: list(v) for k, v in order.items()},
                dict(ks),
                now - start,
            )
            on_round(RoundDone(state, rounds + more, more * per, timings(now)))
        if rounds >= min_rounds and now - start >= budget_s:
            break
        if strict_budget and now - start + (now - t_round) > budget_s:  # next would overrun
            break
    return timings(time.perf_counter())
