"""Run cases, one fresh process each by default, and never lose a finished row.

Why a process per case: the CPU allocator's cached pages, the resident-set high-water mark,
CUDA's caching allocator and one-time library initialisation all carry over inside a process,
so the second case of a run would be measured on a different machine state than the first.
A worker that crashes, runs out of memory or exceeds its timeout becomes a row with its status,
and the run moves on. Every row is appended and flushed to ``rows.jsonl`` the moment it
exists, so a killed run keeps all finished cases and ``--resume`` runs only the rest. Ctrl-C or
SIGTERM (inside :func:`stop_on_signals`) ends the running worker, SIGTERM first and SIGKILL
after :data:`STOP_GRACE_S`, and never turns it into a row; a unit's rows land together.

Compare groups are measured in two steps: each member's counts and memory in its own process,
then all members timed together in one process, round by round (A B C, B C A, ...), so drift
hits every member alike and per-round ratios to the reference are meaningful.

The units come from :func:`hilobench.plan.plan`; a :class:`hilobench.progress.Reporter` shows
how the run goes.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hilobench.case import Case
from hilobench.measure.env import code_state
from hilobench.measure.procenv import worker_env
from hilobench.plan import SuiteCase, Unit
from hilobench.progress import Reporter
from hilobench.rundir_io import repair_torn_tail
from hilobench.store import RunDir
from hilobench.worker import failure_row, run_job

#: Seconds a worker gets to end after SIGTERM before it is killed.
STOP_GRACE_S = 2.0


class WorkerFailed(Exception):
    """A worker process ended without a result (crash, kill, non-zero exit, timeout)."""


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def end_worker(proc: subprocess.Popen[str], grace: float = STOP_GRACE_S) -> None:
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


def call_worker(job: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
    """Run ``job`` in a fresh ``python -m hilobench.worker`` process and return its rows.

    The worker gets a session of its own, so a Ctrl-C in the terminal reaches only the runner,
    which then ends the worker (and whatever it started) itself: a worker killed by the user
    must not become an ``error`` row that ``--resume`` would skip.
    """
    with tempfile.TemporaryDirectory(prefix="hilobench-job-") as tmp:
        job_path, out_path = Path(tmp) / "job.json", Path(tmp) / "rows.json"
        job_path.write_text(json.dumps(job, default=str), encoding="utf-8")
        cmd = [sys.executable, "-m", "hilobench.worker", str(job_path), str(out_path)]
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=worker_env(),
            start_new_session=True,
        )
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            end_worker(proc)
            raise WorkerFailed(f"worker timed out after {timeout:g} s and was killed") from None
        except BaseException:  # KeyboardInterrupt: the run stops, the worker goes with it
            end_worker(proc)
            raise
        if _stop is not None and _stop.signum is not None:
            raise KeyboardInterrupt  # the worker ended because the run is stopping
        if proc.returncode == 0 and out_path.is_file():
            return json.loads(out_path.read_text(encoding="utf-8"))["rows"]
        tail = [ln for ln in (stderr or "").strip().splitlines() if ln.strip()]
        why = f": {tail[-1].strip()}" if tail else ""
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
                rows = self._unit(unit)
                with deferred_signals():  # a unit's rows land together or not at all
                    for sc, row in zip(unit.items, rows, strict=True):
                        self._annotate(sc, row)
                    self.run.append_rows(rows)
                    self.rows += rows
                self.reporter.done(unit, rows)
        finally:
            self.reporter.stop()
        return self.rows

    def append(self, sc: SuiteCase, row: dict[str, Any]) -> None:
        """Annotate and save one row measured outside :meth:`run_units` (a ``--max-batch``
        search), as a unit's rows are."""
        with deferred_signals():
            self._annotate(sc, row)
            self.run.append_rows([row])
            self.rows.append(row)

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
        job = {
            "kind": "group",
            "group": unit.group.name,
            "cases": [sc.case.to_json() for sc in unit.items],
            "case_ids": [sc.id for sc in unit.items],
            "rows": pre,
            "ref": unit.ref,
            "peak_macs_per_s": self._peak(unit.items[0].case),
        }
        timeout = max(sc.timeout for sc in unit.items) + 3 * sum(
            sc.case.budget for sc in unit.items
        )
        try:
            return self._job(job, timeout)
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


def provenance_differences(
    rows: Iterable[dict[str, Any]], suite: str, digest: str | None, code: dict[str, Any]
) -> list[str]:
    """Why ``rows`` do not come from this suite (name, content hash) and code (``code``:
    :func:`code_state`); empty when they do. A column a row does not record (written before it
    existed) is not judged; the commit and dirty flag are judged only where both sides are in
    a git checkout, the package version otherwise."""
    now: dict[str, Any] = {"suite": suite, "suite_hash": digest, **code}
    seen: dict[str, set[str]] = {}
    for r in rows:
        in_git = r.get("git_commit") is not None and code.get("git_commit") is not None
        code_cols = ("git_commit", "git_dirty") if in_git else ("hilobench_version",)
        for k in ("suite", "suite_hash", *code_cols):
            if k in r and now.get(k) is not None and r[k] != now[k]:
                seen.setdefault(k, set()).add(json.dumps(r[k]))
    return [f"{k} {', '.join(sorted(v))} -> {json.dumps(now[k])}" for k, v in seen.items()]


def done_keys(run: RunDir) -> set[str]:
    """Keys of the cases a run directory already holds (any status)."""
    if not run.rows_path.exists():
        return set()
    return {str(r["case_key"]) for r in run.rows() if r.get("case_key")}


def repair_tail(run: RunDir) -> str | None:
    """Cut a row torn by a kill off ``rows.jsonl`` before ``--resume`` appends, so every line
    stays a whole row (:func:`hilobench.rundir_io.repair_torn_tail`); a note when it did."""
    return repair_torn_tail(run.rows_path)


class Stop:
    """The first stop signal received (``signum``) and the state of deferred sections."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.depth = 0
        self.pending = False

    @property
    def exit_code(self) -> int:
        """128 + the signal, as a shell reports it (130 for Ctrl-C, 143 for SIGTERM)."""
        return 128 + (self.signum or signal.SIGINT)

    def handle(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
        if self.depth:
            self.pending = True
            return
        raise KeyboardInterrupt


_stop: Stop | None = None


@contextmanager
def stop_on_signals() -> Iterator[Stop]:
    """While running, SIGINT and SIGTERM both raise KeyboardInterrupt, so a run stopped either
    way ends its worker, keeps its rows and releases its run directory. SIGINT is set
    explicitly: a shell that starts a job in the background leaves it ignored."""
    global _stop
    stop = Stop()
    sigs = (signal.SIGINT, signal.SIGTERM)
    try:
        old: dict[int, Callable[..., Any] | int | None] = {
            s: signal.signal(s, stop.handle) for s in sigs
        }
    except ValueError:  # not the main thread
        yield stop
        return
    _stop = stop
    try:
        yield stop
    finally:
        _stop = None
        for s, h in old.items():
            signal.signal(s, h)


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold a stop signal until the block is done (inside :func:`stop_on_signals`)."""
    stop = _stop
    if stop is None:
        yield
        return
    stop.depth += 1
    try:
        yield
    finally:
        stop.depth -= 1
        if not stop.depth and stop.pending:
            stop.pending = False
            raise KeyboardInterrupt


def elapsed(t0: float) -> str:
    s = time.perf_counter() - t0
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"
