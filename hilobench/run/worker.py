"""Measure in a fresh process: ``python -m hilobench.run.worker JOB.json OUT.json``.

The suite runner starts one worker per case (or per compare group), so allocator caches, the
resident-set high-water mark and lazily initialised libraries of one case cannot colour the
next. A job is a JSON object, the result ``{"rows": [...]}`` is written atomically, so a
worker that crashes or is killed leaves no half-written result: the runner notices the
missing file and records the failure as a row.

Jobs (:mod:`hilobench.run.jobs`)::

    {"kind": "case", "case": {...}, "env_id": "...", "count": true, "timed": true}
    {"kind": "group", "group": "name", "cases": [{...}, ...], "rows": [{...}, ...],
     "ref": 0, "env_id": "..."}
    {"kind": "peak", "device": "cpu", "dtype": "float32"}     # the GEMM rate for rooflines
    {"kind": "free", "device": "cuda"}    # free device memory, read where no other context is
    {"kind": "gate", "protocol": 2, "cases": [{...}, ...], "count": true}

A gate job is one revision's side of ``hilobench gate``, served by the gate's own entry point
(``python -m hilobench.gate.side_worker``, through :func:`serve`), not by this module: the
gate sits above the runner, and the runner never imports it.

Case and group jobs may carry ``peak_macs_per_s`` (measured once per run) for the roofline.

A group job gets each member's row of counts and memory (measured beforehand, one process per
member) and adds timings measured round by round, plus per-round ratios to ``ref``.

Jobs and results travel as JSON and are :mod:`hilobench.run.jobs` dataclasses here; one
table (:data:`RUNNERS`) says which function runs each kind. Faults for the runner's own tests
come from :mod:`hilobench.run.testhooks`, never from a real run.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from hilobench.core.case import Case
from hilobench.core.row import Row, Status
from hilobench.run import testhooks
from hilobench.run.jobs import (
    CaseJob,
    FreeJob,
    GroupJob,
    Job,
    JobResult,
    PeakJob,
    job_from_json,
)

# What imports torch (~1.5 s) is imported where it is used, so that importing this module (the
# runner does, in its own process) stays light.


def failure_row(
    case_json: dict[str, Any], message: str, *, status: Status = Status.ERROR, env_id: str = ""
) -> Row:
    """A row for a case that produced no measurement: identity, status and why."""
    from hilobench.run.engine import base_row  # torch ~1.5 s

    row = base_row(Case.from_json(case_json))
    row["env_id"] = env_id
    row["status"] = status
    row["message"] = " ".join(message.split())[:300]
    return row


def _record_failure(row: Row, exc: BaseException) -> None:
    from hilobench.measure.memory import is_oom  # torch ~1.5 s

    row["status"] = Status.OOM if is_oom(exc) else Status.ERROR
    msg = str(exc).strip().splitlines()
    row["message"] = (msg[0] if msg else type(exc).__name__)[:300]
    row["traceback"] = traceback.format_exc(limit=3)[-2000:]


def measure_case(
    case_json: dict[str, Any],
    *,
    env_id: str = "",
    count: bool = True,
    timed: bool = True,
    case_id: str | None = None,
    peak_macs_per_s: float | None = None,
) -> Row:
    """One case → one row, whatever happens (failures of any stage become a status)."""
    from hilobench.run.engine import run_case  # torch ~1.5 s

    try:
        testhooks.raise_fault(case_json, case_id)
        case = Case.from_json(case_json)
        return run_case(
            case, env_id=env_id, count=count, timed=timed, peak_macs_per_s=peak_macs_per_s
        )
    except Exception as exc:  # build or count failures too: the run goes on
        row = failure_row(case_json, "", env_id=env_id)
        _record_failure(row, exc)
        return row


class _MemberFailed(Exception):
    def __init__(self, index: int, exc: BaseException):
        super().__init__(str(exc))
        self.index = index
        self.exc = exc


def _guard(index: int, fn: Any) -> Any:
    def call() -> Any:
        try:
            return fn()
        except Exception as exc:
            raise _MemberFailed(index, exc) from exc

    return call


def measure_group(
    cases_json: list[dict[str, Any]],
    rows: list[Row],
    *,
    ref: int | None,
    group: str = "",
    case_ids: list[str] | None = None,
    peak_macs_per_s: float | None = None,
    partial_path: str | None = None,
    resume: dict[str, Any] | None = None,
    stamp: dict[str, Any] | None = None,
    on_round: Callable[[dict[str, Any]], None] | None = None,
) -> list[Row]:
    """Time the members of a compare group round by round and add per-round ratios to ``ref``.

    ``rows`` are the members' rows of counts and memory; members whose row is not ``ok`` are
    left out. A member that fails while being timed is recorded and the rest are timed again,
    so one OOM does not cost the others their numbers. After each round the record of
    :mod:`hilobench.run.rounds` is rewritten at ``partial_path`` (and handed to
    ``on_round``); ``resume`` holds stored rounds (by case key) to go on from.
    """
    import torch  # torch ~1.5 s, as for the imports below

    from hilobench.measure import timing
    from hilobench.run.engine import MIN_SAMPLE_S, build_subject, prepare_step
    from hilobench.run.rounds import make_record, mark_partial, write_record

    rows = [r.copy() for r in rows]
    cases = [Case.from_json(c) for c in cases_json]
    ids = case_ids or [c.name for c in cases]
    keys = [c.key for c in cases]
    t0 = time.perf_counter()
    live: dict[int, tuple[Any, Any]] = {}
    for i, (case, row) in enumerate(zip(cases, rows, strict=True)):
        if row.get("status") != "ok":
            continue
        try:
            testhooks.raise_fault(cases_json[i], ids[i])
            timing.set_threads(case.threads)
            subject = build_subject(case)
            step, _ = prepare_step(case, subject, row)
            live[i] = (_guard(i, step), subject)
        except Exception as exc:
            _record_failure(row, exc)
    finish = _GroupRows(cases, ids, keys, ref, group, peak_macs_per_s, t0)

    def round_done(done: timing.RoundDone) -> None:
        by_key = {
            part: {keys[int(i)]: v for i, v in getattr(done.rounds, part).items()}
            for part in ("samples", "order", "calls")
        }
        out = finish(rows, done.timings, {i: s for i, (_, s) in live.items()})
        mark_partial(out, group, done.rounds.n)
        rec = make_record(group=group, keys=keys, stamp=stamp or {},
                          rounds={**by_key, "elapsed_s": done.rounds.elapsed_s},
                          expected=done.expected, eta_s=done.eta_s, rows=out)  # fmt: skip
        if partial_path:
            write_record(Path(partial_path), rec)
        if on_round is not None:
            on_round(rec)

    results: dict[str, timing.Timing] = {}
    while live:
        budget = sum(cases[i].budget for i in live)
        stored = _stored_rounds(resume, keys, live)
        try:
            results = timing.time_interleaved(
                {str(i): fn for i, (fn, _) in live.items()},
                device=cases[next(iter(live))].device,
                budget_s=budget,
                min_sample_s=MIN_SAMPLE_S,
                strict_budget=True,
                on_round=round_done if (partial_path or on_round) else None,
                resume=stored,
            )
            break
        except _MemberFailed as mf:
            _record_failure(rows[mf.index], mf.exc)
            live.pop(mf.index)
            resume = None  # the stored rounds had that member: the rest start afresh
            if cases[mf.index].device.startswith("cuda"):
                torch.cuda.empty_cache()
    return finish(rows, results, {i: s for i, (_, s) in live.items()})


def _stored_rounds(resume: dict[str, Any] | None, keys: list[str], live: dict[int, Any]) -> Any:
    """Stored rounds (by case key) as :class:`timing.Rounds` (by member index), when they are
    for exactly the members timed now."""
    from hilobench.measure.timing import Rounds

    if not resume:
        return None
    want = {keys[i] for i in live}
    if any(set(resume.get(p) or {}) != want for p in ("samples", "order", "calls")):
        return None
    return Rounds(
        samples={str(i): list(resume["samples"][keys[i]]) for i in live},
        order={str(i): list(resume["order"][keys[i]]) for i in live},
        calls={str(i): int(resume["calls"][keys[i]]) for i in live},
        elapsed_s=float(resume.get("elapsed_s") or 0.0),
    )


class _GroupRows:
    """The members' rows from timings: after the last round, and after each round (on copies)
    for the record a stopped group leaves."""

    def __init__(self, cases: list[Case], ids: list[str], keys: list[str], ref: int | None,
                 group: str, peak: float | None, t0: float):  # fmt: skip
        self.cases, self.ids, self.keys, self.ref = cases, ids, keys, ref
        self.group, self.peak, self.t0 = group, peak, t0

    def _ref_label(self, ref: int) -> str:
        """The reference's case id, plus the value it differs by where the group interleaves
        one case across a field (``hilo eager``)."""
        label, case = self.ids[ref], self.cases[ref]
        twins = [c for i, c in zip(self.ids, self.cases, strict=True) if i == label]
        for f in ("backend", "impl", "dtype"):
            if len(twins) > 1 and len({getattr(c, f) for c in twins}) > 1:
                return f"{label} {getattr(case, f)}"
        return label

    def __call__(
        self, base: list[Row], results: dict[str, Any], subjects: dict[int, Any]
    ) -> list[Row]:
        from hilobench.measure import stats
        from hilobench.run.engine import add_roofline, timing_columns

        rows = [r.copy() for r in base]
        ref = self.ref
        for name, tm in results.items():
            i = int(name)
            rows[i].update(timing_columns(self.cases[i], subjects[i], tm))
            rows[i]["interleaved"] = True
            add_roofline(rows[i], self.peak)
        wall = round(time.perf_counter() - self.t0, 3)
        ref_samples = rows[ref].get("samples_s") if ref is not None else None
        for i, row in enumerate(rows):
            row["group"] = self.group
            row["group_wall_s"] = wall
            if ref is not None:
                row["ref"] = self._ref_label(ref)
                row["ref_key"] = rows[ref].get("case_key")
            if ref_samples and row.get("samples_s") and str(i) in results:
                rs = stats.ratio_summary(row["samples_s"], ref_samples)
                row["ratio_to_ref"] = 1.0 if i == ref else rs["ratio_median"]
                row["ratio_ci_low"] = 1.0 if i == ref else rs["ratio_ci_low"]
                row["ratio_ci_high"] = 1.0 if i == ref else rs["ratio_ci_high"]
                row["ratio_n"] = rs["n"]
                row["ratio_frac_faster"] = None if i == ref else rs["frac_a_faster"]
        return rows


def _keywords(job: CaseJob | GroupJob, *positional: str) -> dict[str, Any]:
    """A job's fields, less the ``positional`` ones, as keywords: each field of a case or group
    job is named after the parameter of :func:`measure_case` / :func:`measure_group` it fills."""
    return {f.name: getattr(job, f.name) for f in fields(job) if f.name not in positional}


def _case(job: CaseJob, on_round: OnRound | None = None) -> list[dict[str, Any]]:
    return [dict(measure_case(job.case, **_keywords(job, "case")))]


def _group(job: GroupJob, on_round: OnRound | None = None) -> list[dict[str, Any]]:
    rows = measure_group(job.cases, job.rows, **_keywords(job, "cases", "rows"), on_round=on_round)
    return [dict(r) for r in rows]


def _peak(job: PeakJob, on_round: OnRound | None = None) -> list[dict[str, Any]]:
    from hilobench.measure.roofline import peak_macs_per_s  # torch ~1.5 s

    return [{"peak_macs_per_s": peak_macs_per_s(job.device, job.dtype)}]


def _free(job: FreeJob, on_round: OnRound | None = None) -> list[dict[str, Any]]:
    from hilobench.measure.memory import available_bytes  # torch ~1.5 s

    return [{"free_bytes": available_bytes(job.device)}]


#: Told a group's record after each round (the in-process runner keeps it).
OnRound = Callable[[dict[str, Any]], None]

#: Which function runs each kind of job (a group job tells ``on_round`` its record after each
#: round; the others take no notice of it).
RUNNERS: dict[type, Callable[[Any, OnRound | None], list[dict[str, Any]]]] = {
    CaseJob: _case,
    GroupJob: _group,
    PeakJob: _peak,
    FreeJob: _free,
}


def run_job(job: Job | dict[str, Any], on_round: OnRound | None = None) -> list[dict[str, Any]]:
    """Run a job (a :mod:`hilobench.run.jobs` dataclass, or its JSON form) in this process
    and return its rows; ValueError for a job of no known kind."""
    if isinstance(job, dict):
        job = job_from_json(job)
    return RUNNERS[type(job)](job, on_round)


def _die_with_parent() -> None:
    """Linux: ask the kernel to kill this worker when its runner dies, so a killed run leaves
    no orphan measuring on (best effort; elsewhere the worker simply finishes its case)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before the request took effect
            os._exit(1)
    except (OSError, AttributeError):
        pass


def _process_fault(job: Job) -> None:
    """The test hooks' ``exit``, ``hang`` and ``term`` faults act on a worker process only."""
    if isinstance(job, CaseJob):
        testhooks.process_fault([job.case], [job.case_id])
    elif isinstance(job, GroupJob):
        ids: list[str | None] = [*job.case_ids] if job.case_ids else [None] * len(job.cases)
        testhooks.process_fault(job.cases, ids)


def serve(argv: list[str], module: str, run: Callable[[Job], list[dict[str, Any]]]) -> int:
    """The life of a worker process: read the job file, run it, write the result file
    atomically (a killed worker leaves none). ``module`` names the entry point for the usage
    line; the gate's side process (:mod:`hilobench.gate.side_worker`) is served the same way."""
    if len(argv) != 2:
        sys.stderr.write(f"usage: python -m {module} JOB.json OUT.json\n")
        return 2
    _die_with_parent()
    job = job_from_json(json.loads(Path(argv[0]).read_text(encoding="utf-8")))
    _process_fault(job)
    result = JobResult(run(job))
    out = Path(argv[1])
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(json.dumps(result.to_json(), default=str), encoding="utf-8")
    os.replace(tmp, out)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the worker process."""
    args = list(sys.argv[1:] if argv is None else argv)
    return serve(args, "hilobench.run.worker", run_job)


if __name__ == "__main__":
    sys.exit(main())
