"""The largest batch that fits a memory limit: ``--max-batch`` on ``layer`` and ``model``.

The search doubles the batch from 1 until a probe does not fit, then bisects between the last
batch that fitted and the first that did not, so the answer ``b`` fits and ``b + 1`` (hence,
memory growing with the batch, ``2 b``) does not. A probe *fits* when it measured fine and its
peak memory (:mod:`hilobench.measure.memory`: the CUDA allocator's peak, or on the CPU the peak
of live tensor bytes) is within the limit; a probe that ran out of memory, was killed or failed
does not fit. Each probe runs in a fresh worker process (:func:`worker_probe`), so an
out-of-memory error or a fragmented allocator cannot colour the next probe. The search is
bounded twice: by a batch ceiling and by a number of probes, so its time is bounded too.

Nothing here imports torch: the search is a pure function of a ``probe`` callable, which tests
replace with a model of memory (``peak = a * batch + b``) or one that runs out of memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hilobench.core.case import Case
from hilobench.core.errors import ConfigError
from hilobench.core.plan import search_key

if TYPE_CHECKING:
    from hilobench.core.plan import SuiteCase

#: Largest batch the search tries, and most probes it makes: doubling to 2**16 takes 17
#: probes and bisecting below it 16 more, so every search ends within these 33.
BATCH_CEILING = 1 << 16
MAX_PROBES = 33
#: Seconds one probe (a fresh process: start-up, build and one step) may take.
PROBE_TIMEOUT_S = 300.0
#: Share of the available RAM that is the default CPU limit: a probe that misses the limit
#: may still take about twice the last one's memory, which must not push the machine into swap.
CPU_SAFETY = 0.5

_UNITS = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
    "t": 10**12, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}  # fmt: skip
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$")


def parse_mem_limit(text: str) -> int:
    """``2GB`` → 2·10⁹ bytes, ``512MiB`` → 512·2²⁰: decimal (kB, MB, GB, TB) and binary
    (KiB, MiB, GiB, TiB) units, case-insensitive, a bare number being bytes. ConfigError
    naming the value and the units allowed otherwise (zero, negative, NaN, unknown unit)."""
    m = _SIZE.match(str(text))
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _UNITS:
        raise ConfigError(
            f"bad memory limit {text!r}; expected a positive size such as 2GB, 512MiB or "
            "1.5GiB (units: B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)"
        )
    value = int(float(m.group(1)) * _UNITS[unit])
    if value < 1:
        raise ConfigError(f"bad memory limit {text!r}; it must be at least 1 byte")
    return value


def fmt_bytes(n: int | float) -> str:
    """Bytes in binary units for people: ``1.9 GiB``."""
    x = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(x) < 1024 or unit == "GiB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    return f"{x:.1f} GiB"  # pragma: no cover - the loop returns


@dataclass(frozen=True)
class Probe:
    """One probe's outcome: its batch, the peak memory it measured (None when it measured
    none), its status (``ok``, ``OOM`` or ``error``) and why it failed."""

    batch: int
    peak_bytes: int | None
    status: str
    message: str = ""
    #: the probe's row (counts, token map, memory), when a worker measured one
    row: dict[str, Any] | None = field(default=None, compare=False)

    def fits(self, limit: int) -> bool:
        return self.status == "ok" and self.peak_bytes is not None and self.peak_bytes <= limit


@dataclass
class Search:
    """What a search found. ``best`` is the largest batch that fitted (0: not even batch 1),
    ``first_fail`` the smallest batch that did not (None: none found below the ceiling), and
    ``stop`` why it ended: ``found`` (``first_fail == best + 1``), ``ceiling`` or ``probes``."""

    limit: int
    best: int = 0
    first_fail: int | None = None
    stop: str = "found"
    probes: list[Probe] = field(default_factory=list)

    def probe_of(self, batch: int) -> Probe | None:
        return next((p for p in self.probes if p.batch == batch), None)


def search_max_batch(
    probe: Callable[[int], Probe],
    limit: int,
    *,
    ceiling: int = BATCH_CEILING,
    max_probes: int = MAX_PROBES,
) -> Search:
    """The largest batch in [1, ``ceiling``] whose probe fits ``limit``, in at most
    ``max_probes`` calls of ``probe``: doubling from 1, then bisection."""
    s = Search(limit)

    def fits(batch: int) -> bool:
        p = probe(batch)
        s.probes.append(p)
        return p.fits(limit)

    batch = 1
    while True:
        if len(s.probes) >= max_probes:
            s.stop = "probes"
            return s
        if not fits(batch):
            s.first_fail = batch
            break
        s.best = batch
        if batch >= ceiling:
            s.stop = "ceiling"
            return s
        batch = min(2 * batch, ceiling)
    while s.first_fail - s.best > 1:
        if len(s.probes) >= max_probes:
            s.stop = "probes"
            return s
        mid = (s.best + s.first_fail) // 2
        if fits(mid):
            s.best = mid
        else:
            s.first_fail = mid
    s.stop = "found"
    return s


def search_row(case: Case, s: Search, base: dict[str, Any]) -> dict[str, Any]:
    """The row of one search: the found batch's probe row (its counts and memory; ``base``,
    the identity columns of the case at that batch, where there is none) plus the answer, the
    limit and every probe. Not even batch 1 fitting is an ``OOM`` row (``error`` when batch 1
    failed otherwise)."""
    best = s.probe_of(s.best)
    row = dict(base)
    if best is not None and best.row is not None:
        row.update(best.row)
    row["case_key"] = search_key(case, s.limit)
    row["max_batch"] = s.best
    row["mem_limit_bytes"] = s.limit
    row["max_batch_fail"] = s.first_fail
    row["max_batch_stop"] = s.stop
    row["max_batch_probes"] = [
        {"batch": p.batch, "peak_mem_bytes": p.peak_bytes, "status": p.status} for p in s.probes
    ]
    if best is not None and best.peak_bytes is not None:
        row["peak_mem_bytes"] = best.peak_bytes
    first = s.probe_of(1)
    if s.best == 0:
        failed = first if first is not None else Probe(1, None, "error", "no probe ran")
        over = failed.status == "ok"  # measured fine, but above the limit
        row["status"] = "OOM" if over or failed.status == "OOM" else "error"
        row["message"] = (
            f"batch 1 needs {fmt_bytes(failed.peak_bytes or 0)}, over the limit of "
            f"{fmt_bytes(s.limit)}"
            if over
            else f"batch 1 failed: {failed.message}"
        )[:300]
    else:
        row["status"] = "ok"
        why = {
            "found": f"batch {s.first_fail} does not fit",
            "ceiling": f"the search stops at batch {s.best}",
            "probes": f"the search stopped after {len(s.probes)} probes",
        }[s.stop]
        row["message"] = f"largest batch within {fmt_bytes(s.limit)}: {s.best} ({why})"
    return row


def worker_probe(
    case: Case, env_id: str = "", timeout: float = PROBE_TIMEOUT_S
) -> Callable[[int], Probe]:
    """A probe that measures ``case`` at a batch in a fresh worker process: build, one step
    under the memory tracker, no count trace, no timing. A worker killed (the kernel's
    out-of-memory killer) counts as out of memory."""
    from hilobench.run.runner import WorkerFailed, call_worker

    def probe(batch: int) -> Probe:
        job = {
            "kind": "case",
            "case": case.with_(batch=batch).to_json(),
            "env_id": env_id,
            "count": False,
            "timed": False,
        }
        try:
            (row,) = call_worker(job, timeout)
        except WorkerFailed as e:
            status = "OOM" if "SIGKILL" in str(e) else "error"
            return Probe(batch, None, status, str(e))
        peak = row.get("peak_mem_bytes")
        peak = peak if isinstance(peak, int) else None
        return Probe(batch, peak, str(row.get("status")), str(row.get("message") or ""), row)

    return probe


def default_limit(device: str) -> int:
    """The limit when none is given: the device's free memory on CUDA (asked of a worker, so
    this process holds no CUDA context that would take some of it), on the CPU the available
    RAM times :data:`CPU_SAFETY`."""
    if device.startswith("cuda"):
        from hilobench.run.runner import WorkerFailed, call_worker

        try:
            (res,) = call_worker({"kind": "free", "device": device}, 120.0)
        except WorkerFailed as e:
            raise ConfigError(f"could not read the free memory of {device}: {e}") from None
        return int(res["free_bytes"])
    import psutil  # ~20 ms

    return int(psutil.virtual_memory().available * CPU_SAFETY)


def check_limit(limit: int, device: str) -> int:
    """Refuse a CPU limit above the available RAM: probing near it would swap or wake the
    out-of-memory killer, which ends more than the probe."""
    if not device.startswith("cuda"):
        import psutil  # ~20 ms

        have = int(psutil.virtual_memory().available)
        if limit > have:
            raise ConfigError(
                f"--mem-limit {fmt_bytes(limit)} is more than the {fmt_bytes(have)} of RAM "
                f"available; give at most that (default: {CPU_SAFETY:.0%} of it)"
            )
    return limit


def search_limit(cases: list[Case], mem_limit: str | None) -> int:
    """The --max-batch limit in bytes: as given (checked against the RAM on the CPU), else the
    device's default (:func:`hilobench.run.maxbatch.default_limit`)."""
    device = cases[0].device
    if mem_limit is None:
        return default_limit(device)
    return check_limit(parse_mem_limit(mem_limit), device)


def search_suite_case(sc: SuiteCase, env_id: str) -> dict[str, Any]:
    """The row of a case with ``max_batch`` (a suite's field, or ``--max-batch`` on the
    command line): the largest batch within its limit, each probe in a fresh worker (the
    runner's searcher)."""
    from hilobench.run.engine import base_row  # torch ~1.5 s: a search's row needs its columns

    assert sc.max_batch is not None
    found = search_max_batch(worker_probe(sc.case, env_id, sc.timeout), sc.max_batch)
    return search_row(sc.case, found, dict(base_row(sc.case.with_(batch=max(1, found.best)))))
