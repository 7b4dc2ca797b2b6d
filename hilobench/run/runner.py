"""Run cases, one fresh process each by default, and never lose a finished row.

Why a process per case: the CPU allocator's cached pages, the resident-set high-water mark,
CUDA's caching allocator and one-time library initialisation all carry over inside a process,
so the second case of a run would be measured on a different machine state than the first.
A worker that crashes, runs out of memory or exceeds its timeout becomes a row with its status,
and the run moves on. Every row is appended and flushed to ``rows.jsonl`` the moment it
exists, so a killed run keeps all finished cases and ``--resume`` runs only the rest. Ctrl-C or
SIGTERM (inside :func:`hilobench.run.signals.stop_on_signals`) ends the running worker,
SIGTERM first and SIGKILL after :data:`STOP_GRACE_S`, and never turns it into a row; a unit's
rows land together.

Compare groups are measured in two steps: each member's counts and memory in its own process,
then all members timed together in one process, round by round (A B C, B C A, ...), so drift
hits every member alike and per-round ratios to the reference are meaningful. The rounds a
stopped group finished are kept (:mod:`hilobench.run.rounds`): its rows land as ``partial``
and ``--resume`` continues the rounds, or times the group whole again; the group's finished
rows then take the place of every earlier row of its members.

The units come from :func:`hilobench.core.plan.plan`; a :class:`hilobench.run.progress.Reporter`
shows how the run goes. What surrounds a run (its directory's rules, lock, signals and tables)
is :mod:`hilobench.run.session`'s.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hilobench.core.case import Case
from hilobench.core.plan import SuiteCase, Unit
from hilobench.measure.env import code_state
from hilobench.measure.procenv import worker_env
from hilobench.run import forkserver
from hilobench.run import rounds as group_rounds
from hilobench.run.jobdir import job_dir, sweep_once
from hilobench.run.jobs import Job, JobResult, job_to_json
from hilobench.run.progress import Reporter
from hilobench.run.signals import current_stop, deferred_signals
from hilobench.run.worker import failure_row, run_job
from hilobench.store.writer import RunDir

#: Seconds a worker gets to end after SIGTERM before it is killed.
STOP_GRACE_S = 2.0
#: Seconds between looks at a compare group's progress while its worker runs.
POLL_S = 0.5


class WorkerFailed(Exception):
    """A worker process ended without a result (crash, kill, non-zero exit, timeout)."""


class WorkerInterrupted(KeyboardInterrupt):
    """A worker was stopped by a signal from outside (``scancel``, preemption, ``kill``): the
    case was interrupted, not failed, so it gets no row and stays open for ``--resume``."""


#: Signals that stop a worker from outside; SIGKILL is not one (the out-of-memory killer's).
OUTSIDE_STOPS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def end_worker(proc: subprocess.Popen[str] | forkserver.Child, grace: float = STOP_GRACE_S) -> None:
    """SIGTERM to the worker's process group (it leads one: see call_worker), SIGKILL after
    ``grace`` seconds, then reap it."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    for f in (proc.stdout, proc.stderr):
        if f is not None:
            f.close()


def call_worker(
    job: Job | dict[str, Any], timeout: float, on_poll: Callable[[], None] | None = None
) -> list[dict[str, Any]]:
    """Run ``job`` in a fresh ``python -m hilobench.run.worker`` process (a CPU job: a child forked
    off :mod:`hilobench.run.forkserver`) and return its rows.

    The worker gets a session of its own, so a Ctrl-C in the terminal reaches only the runner,
    which then ends the worker (and whatever it started) itself: a worker killed by the user
    must not become an ``error`` row that ``--resume`` would skip. ``on_poll`` is called about
    every :data:`POLL_S` seconds while the worker runs (progress).
    """
    sweep_once()  # job directories of runs killed before they could remove theirs
    with job_dir() as tmp:
        job_path, out_path = Path(tmp) / "job.json", Path(tmp) / "rows.json"
        data = job if isinstance(job, dict) else job_to_json(job)
        job_path.write_text(json.dumps(data, default=str), encoding="utf-8")
        cmd = [sys.executable, "-m", "hilobench.run.worker", str(job_path), str(out_path)]
        env = worker_env()
        # a CPU job forks off a preloaded worker: torch imported once per run, not per case
        proc: Any = forkserver.wanted(data) and forkserver.start(
            job_path, out_path, Path(tmp) / "stderr.txt", env
        )
        if not proc:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=env, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                try:
                    _, stderr = proc.communicate(
                        timeout=max(min(left, POLL_S), 0.0) if on_poll else max(left, 0.0)
                    )
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() >= deadline:
                        raise
                    if on_poll is not None:
                        on_poll()
        except subprocess.TimeoutExpired:
            end_worker(proc)
            raise WorkerFailed(f"worker timed out after {timeout:g} s and was killed") from None
        except BaseException:  # KeyboardInterrupt: the run stops, the worker goes with it
            end_worker(proc)
            raise
        stop = current_stop()
        if stop is not None and stop.signum is not None:
            raise KeyboardInterrupt  # the worker ended because the run is stopping
        if proc.returncode == 0 and out_path.is_file():
            return JobResult.from_json(json.loads(out_path.read_text(encoding="utf-8"))).rows
        tail = [ln for ln in (stderr or "").strip().splitlines() if ln.strip()]
        why = f": {tail[-1].strip()}" if tail else ""
        if proc.returncode in [-int(s) for s in OUTSIDE_STOPS]:
            if stop is not None and stop.signum is None:
                stop.signum = -proc.returncode  # the run stops as if it had the signal itself
            raise WorkerInterrupted(f"worker stopped by {_signal_name(proc.returncode)}")
        if proc.returncode < 0:
            sig = _signal_name(proc.returncode)
            hint = " (likely the out-of-memory killer)" if sig == "SIGKILL" else ""
            raise WorkerFailed(f"worker killed by {sig}{hint}{why}")
        raise WorkerFailed(f"worker exited with code {proc.returncode} without a result{why}")


class Runner:
    """Runs units and appends each finished row to the run directory at once."""

    def __init__(
        self,
        run: RunDir,
        *,
        env_id: str = "",
        isolate: bool = True,
        reporter: Reporter | None = None,
        suite: str | None = None,
        suite_hash: str | None = None,
        roofline: bool = True,
        searcher: Callable[[SuiteCase, str], dict[str, Any]] | None = None,
    ):
        self.run = run
        self.env_id = env_id
        self.isolate = isolate
        self.roofline = roofline
        #: a suite case's max_batch search (``maxbatch.search_suite_case``), given by the
        #: command that builds the runner: the search's probes call this module's workers
        self.searcher = searcher
        self.reporter = reporter or Reporter()
        self.suite = suite
        self.suite_hash = suite_hash
        # the code that measures, once per run (a few git calls)
        self.provenance = provenance(isolate, exclude=[run.path])
        self.rows: list[dict[str, Any]] = []
        self.peaks: dict[str, float] = {}

    def run_units(self, units: list[Unit]) -> list[dict[str, Any]]:
        """Measure every unit in order; a KeyboardInterrupt leaves finished rows on disk."""
        if self.roofline:
            self._measure_peaks(units)
        self.reporter.start(sum(len(u.items) for u in units), sum(u.weight for u in units))
        try:
            for unit in units:
                self.reporter.begin(unit)
                try:
                    rows = self._unit(unit)
                except KeyboardInterrupt:
                    self._keep_rounds(unit)
                    raise
                with deferred_signals():  # a unit's rows land together or not at all
                    self._land(unit, rows)
                self.reporter.done(unit, rows)
        finally:
            self.reporter.stop()
        return self.rows

    def _land(self, unit: Unit, rows: list[dict[str, Any]]) -> None:
        """Save a unit's rows; a compare group's replace every earlier row of its members (the
        rows of its interrupted rounds, or of a group timed whole again) and end its record."""
        for sc, row in zip(unit.items, rows, strict=True):
            self._annotate(sc, row)
        if unit.group is None:
            self.run.append_rows(rows)
        else:
            keys = [sc.case.key for sc in unit.items]
            if not group_rounds.replace_rows(self.run.rows_path, set(keys), rows):
                self.run.append_rows(rows)
            group_rounds.drop_record(group_rounds.record_path(self.run.path, keys))
        self.rows += rows

    def _keep_rounds(self, unit: Unit) -> None:
        """On a stop inside a compare group: save the rows of the rounds it finished, marked
        ``partial`` (its record stays for ``--resume``)."""
        if unit.group is None:
            return
        path = group_rounds.record_path(self.run.path, [sc.case.key for sc in unit.items])
        rows = group_rounds.partial_rows(group_rounds.read_record(path))
        if len(rows) != len(unit.items):
            return
        with deferred_signals():
            for sc, row in zip(unit.items, rows, strict=True):
                self._annotate(sc, row)
            keys = {sc.case.key for sc in unit.items}
            if not group_rounds.replace_rows(self.run.rows_path, keys, rows):
                self.run.append_rows(rows)
            self.rows += rows

    def _stamp(self) -> dict[str, Any]:
        """What stored rounds must share with this run to be continued: code and machine."""
        return {"env_id": self.env_id, **self.provenance}

    def _measure_peaks(self, units: list[Unit]) -> None:
        """The device's GEMM rate per (device, dtype), measured once per run (and reused on
        resume) so every row's roofline fraction divides by the same figure."""
        recorded = self.run.env().get("peak_macs_per_s") or {}
        for u in units:
            for sc in u.items:
                k = f"{sc.case.device}/{sc.case.dtype}"
                if k in self.peaks:
                    continue
                if k in recorded:
                    self.peaks[k] = float(recorded[k])
                    continue
                job = {"kind": "peak", "device": sc.case.device, "dtype": sc.case.dtype}
                try:
                    # a GPU is only touched by workers, so the runner holds no CUDA context
                    if sc.case.device.startswith("cuda"):
                        (res,) = self._job(job, 300.0)
                    else:
                        (res,) = run_job(job)
                except (WorkerFailed, RuntimeError):  # no roofline column then, the run goes on
                    continue
                self.peaks[k] = float(res["peak_macs_per_s"])
                self.run.record_peak(sc.case.device, sc.case.dtype, self.peaks[k])

    def _peak(self, case: Case) -> float | None:
        return self.peaks.get(f"{case.device}/{case.dtype}")

    def _annotate(self, sc: SuiteCase, row: dict[str, Any]) -> None:
        row.setdefault("env_id", self.env_id)
        row.update(self.provenance)
        if self.suite is not None:
            row["suite"] = self.suite
            row["case_id"] = sc.id
            if self.suite_hash is not None:
                row["suite_hash"] = self.suite_hash

    def _unit(self, unit: Unit) -> list[dict[str, Any]]:
        if unit.group is None:
            sc = unit.items[0]
            if sc.max_batch is None:
                return [self._one(sc, timed=True)]
            if self.searcher is None:  # pragma: no cover - the suite commands give one
                raise RuntimeError(f"{sc.id}: this runner has no max_batch search")
            return [self.searcher(sc, self.env_id)]
        pre = [self._one(sc, timed=False) for sc in unit.items]
        if not any(r.get("status") == "ok" for r in pre):
            return pre
        keys = [sc.case.key for sc in unit.items]
        path = group_rounds.record_path(self.run.path, keys)
        live = [k for k, r in zip(keys, pre, strict=True) if r.get("status") == "ok"]
        stored = group_rounds.read_record(path)
        resume = group_rounds.continuation(stored, keys, live, self._stamp())
        if resume is None:
            group_rounds.drop_record(path)  # timed whole again: its rounds cannot go on
        else:
            self.reporter.note(f"compare {unit.group.name}: continuing from "
                               f"{stored and stored.get('n')} stored round(s)")  # fmt: skip
        job = {
            "kind": "group",
            "group": unit.group.name,
            "cases": [sc.case.to_json() for sc in unit.items],
            "case_ids": [sc.id for sc in unit.items],
            "rows": pre,
            "ref": unit.ref,
            "peak_macs_per_s": self._peak(unit.items[0].case),
            "partial_path": str(path),
            "resume": resume,
            "stamp": self._stamp(),
        }
        timeout = max(sc.timeout for sc in unit.items) + 3 * sum(
            sc.case.budget for sc in unit.items
        )

        def progress(rec: dict[str, Any] | None = None) -> None:
            rec = rec if rec is not None else group_rounds.read_record(path)
            if rec is not None and rec.get("n"):
                self.reporter.round(unit, int(rec["n"]), int(rec["expected"]), rec["eta_s"])

        try:
            if self.isolate:
                return call_worker(job, timeout, progress)
            return run_job(job, progress)
        except WorkerFailed as e:
            out = []
            for r in pre:
                r = dict(r)
                if r.get("status") == "ok":
                    r.update(status="error", message=f"compare {unit.group.name}: {e}"[:300])
                r["group"] = unit.group.name
                out.append(r)
            return out

    def _one(self, sc: SuiteCase, *, timed: bool) -> dict[str, Any]:
        job: dict[str, Any] = {
            "kind": "case",
            "case": sc.case.to_json(),
            "case_id": sc.id,
            "env_id": self.env_id,
            "count": sc.count,
            "timed": timed,
            "peak_macs_per_s": self._peak(sc.case),
        }
        try:
            (row,) = self._job(job, sc.timeout)
        except WorkerFailed as e:
            row = dict(failure_row(job["case"], str(e), env_id=self.env_id))
        return row

    def _job(self, job: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
        if self.isolate:
            return call_worker(job, timeout)
        return run_job(job)


def provenance(isolated: bool, exclude: Iterable[str | Path] = ()) -> dict[str, Any]:
    """The provenance columns of a row: the code version (:func:`code_state`) and whether it
    was measured in a worker process of its own."""
    return {**code_state(exclude), "isolated": bool(isolated)}


def suite_hash(data: bytes) -> str:
    """The ``suite_hash`` column: 16 hex digits of the suite file's sha256."""
    return hashlib.sha256(data).hexdigest()[:16]
