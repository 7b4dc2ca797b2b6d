"""The launcher of a cluster run: submit packed jobs through submitit, stream their rows in,
resubmit a failed job once, and turn what still fails into failure rows.

Executors: ``slurm`` (``submitit.SlurmExecutor``: sbatch, one job array per submission) and
``local`` (``submitit.LocalExecutor``: the same jobs as processes on this machine, so the path
is exercised without a cluster). Both run :func:`hilobench.cluster.job.run_packed`.

Local jobs share this machine, so at most ``array_parallelism`` (default 1) run at once: two
measurements at a time would time each other. Stopping the launcher (Ctrl-C, SIGTERM) stops its
local jobs too and keeps every row they finished; SLURM jobs keep running, and ``--resume``
picks them up by id (:mod:`hilobench.cluster.ledger`). A launcher killed outright leaves local
jobs running as well; the next launcher waits for them by process id.

A job that ends without all its rows (a crash, the time limit, a node failure) is submitted
again for the missing cases once; after that each missing case becomes a row with status
``error`` and the scheduler's state and reason in ``message``, so a failed job costs its cases,
never the run. A job stopped from outside (``scancel``, preemption: state CANCELLED or
PREEMPTED, or the job's ``interrupted`` marker) did not fail: it is submitted again without
counting, up to :data:`MAX_INTERRUPTS` times per launcher, after which its cases stay open (no
rows) for ``--resume``.

submitit is an optional dependency (``hilobench[slurm]``), imported only here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hilobench.cluster.ledger import MAX_ATTEMPTS, SUBMITIT_DIR, JobRecord, Ledger, RowStream
from hilobench.cluster.packing import ClusterSettings, job_cpus, without
from hilobench.core.errors import ConfigError
from hilobench.store.writer import RunDir

EXECUTORS = ("runner", "local", "slurm")
#: Seconds between looks at the jobs (local processes are cheap to ask; sacct is not).
POLL_S = {"local": 0.2, "slurm": 10.0}
#: Seconds a stopped local job gets to end before it is killed.
STOP_WAIT_S = 15.0
#: Submissions of one job stopped from outside that a launcher replaces before it leaves the
#: job's cases open for ``--resume`` (a job cancelled on purpose is not fought forever).
MAX_INTERRUPTS = 3
#: Scheduler states of a job stopped from outside rather than failed.
INTERRUPTED_STATES = ("CANCELLED", "PREEMPTED", "REQUEUED")


def require_submitit() -> Any:
    """The submitit module; one line naming the extra when it is not installed."""
    try:
        import submitit  # optional, ~0.1 s: only cluster runs need it
    except ImportError:
        raise ConfigError(
            "--executor local/slurm needs submitit, which is not installed; install it with "
            "pip install 'hilobench[slurm]'"
        ) from None
    return submitit


def slurm_parameters(
    s: ClusterSettings, partition: str | None, cpus: int | None = None
) -> dict[str, Any]:
    """``SlurmExecutor.update_parameters`` arguments for one machine class: one task on one
    node (a compare group must share a node), the time limit, GPUs and the constraint, and the
    CPUs it measures with: the whole node (``--exclusive``), or ``cpus`` (the job's threads)
    when the settings opt out, so a timed thread never shares a core with another job."""
    params: dict[str, Any] = {"nodes": 1, "ntasks_per_node": 1, "time": s.time_min}
    if s.exclusive:
        params["exclusive"] = True
    elif cpus:
        params["cpus_per_task"] = cpus
    if partition:
        params["partition"] = partition
    if s.gpus_per_node:
        params["gpus_per_node"] = s.gpus_per_node
    if s.constraint:
        params["constraint"] = s.constraint
    if s.cpus_per_task:
        params["cpus_per_task"] = s.cpus_per_task
    if s.array_parallelism:
        params["array_parallelism"] = s.array_parallelism
    return params


def make_executor(kind: str, folder: Path, s: ClusterSettings, partition: str | None) -> Any:
    """A submitit executor writing its scripts, pickles and logs under ``folder``."""
    submitit = require_submitit()
    if kind == "local":
        ex = submitit.LocalExecutor(folder=str(folder))
        ex.update_parameters(timeout_min=s.time_min, gpus_per_node=s.gpus_per_node)
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
        if 0 < s.gpus_per_node <= len(visible) and all(v.strip().isdigit() for v in visible):
            # the launcher's own GPUs, not the first N of the machine
            ex.update_parameters(visible_gpus=[int(v) for v in visible])
        return ex
    try:
        ex = submitit.SlurmExecutor(folder=str(folder))
    except RuntimeError as e:  # no srun here
        raise ConfigError(f"--executor slurm: {e}") from None
    ex.update_parameters(job_name="hilobench", **slurm_parameters(s, partition))
    return ex


def _last_line(text: str | None) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


class Launcher:
    """Drives the jobs of one run directory (one machine class) to the end."""

    def __init__(
        self,
        run: RunDir,
        ledger: Ledger,
        settings: ClusterSettings,
        done: set[str],
        say: Callable[[str], None] = lambda line: None,
    ):
        self.run = run
        self.say = say
        self.ledger = ledger
        self.settings = settings
        self.kind = ledger.executor
        self.interrupts: dict[str, int] = {}  # job name -> submissions stopped from outside
        for job in ledger.jobs:
            if job.state == "open":  # left open by an earlier launcher: --resume runs it
                job.state = "pending"
        self.folder = run.path / SUBMITIT_DIR
        self.executor = make_executor(self.kind, self.folder, settings, ledger.partition)
        self.parallel = settings.array_parallelism or (1 if self.kind == "local" else 10**6)
        self.stream = RowStream(ledger, done)
        self.live: dict[str, Any] = {}  # job name -> submitit Job submitted by this launcher
        self.attached: dict[str, Any] = {}  # job id -> submitit Job of an earlier launcher
        self.landed: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self._env_class: dict[str, str] | None = None

    # -- one look at every job -------------------------------------------------------------
    def step(self) -> bool:
        """Stream new rows, settle ended jobs, submit what may start; True while work is left."""
        for job in self.ledger.jobs:
            if job.state == "submitted":
                self._pull(job)
                ended, state, detail = self._status(job)
                if ended:
                    self._pull(job)
                    self._settle(job, state, detail)
        waiting = [j for j in self.ledger.jobs if j.state == "pending"]
        running = sum(1 for j in self.ledger.jobs if j.state == "submitted")
        if waiting and running < self.parallel:
            self._submit(waiting[: self.parallel - running])
        return any(j.state in ("pending", "submitted") for j in self.ledger.jobs)

    @property
    def open_cases(self) -> int:
        """Cases of jobs stopped from outside too often, left without rows for ``--resume``."""
        return sum(len(self.stream.missing(j)) for j in self.ledger.jobs if j.state == "open")

    def _pull(self, job: JobRecord) -> None:
        rows = self.stream.pull(job)
        env = self.stream.env(job)
        if env and not self.run.env():
            self.run.create(env)
        if env:
            self._check_class(env)
        if rows:
            self.run.append_rows(rows)
            self.landed += rows

    def _check_class(self, env: dict[str, Any]) -> None:
        from hilobench.measure.env import class_differences, machine_class

        cls = machine_class(env)
        if self._env_class is None:
            self._env_class = machine_class(self.run.env()) or cls
        diffs = class_differences(self._env_class, cls)
        note = f"note: a job of {self.run.path} ran on another machine class ({'; '.join(diffs)})"
        if diffs and note not in self.notes:
            self.notes.append(note)

    # -- job states ------------------------------------------------------------------------
    def _job(self, job: JobRecord) -> Any:
        if job.name in self.live:
            return self.live[job.name]
        key = str(job.job_id)
        if key not in self.attached:  # a job of an earlier launcher, found again by its id
            submitit = require_submitit()
            cls = submitit.LocalJob if self.kind == "local" else submitit.SlurmJob
            self.attached[key] = cls(folder=str(self.folder), job_id=key)
        return self.attached[key]

    def _status(self, job: JobRecord) -> tuple[bool, str, str]:
        """(ended, the scheduler's state, why it ended without a result: '' when it did not)."""
        sj = self._job(job)
        if self.kind == "local" and job.name not in self.live:
            if _local_alive(str(job.job_id)):
                return False, "RUNNING", ""
            state = "FINISHED" if sj.paths.result_pickle.exists() else "ENDED"
        else:
            if not sj.done():
                return False, "RUNNING", ""
            state = str(sj.state)
        return True, state, _outcome(sj)

    def _settle(self, job: JobRecord, state: str, detail: str) -> None:
        self.live.pop(job.name, None)
        missing = self.stream.missing(job)
        why = f"{state}: {detail}" if detail else state
        where = f"{self._where}{job.name} (job {job.job_id})"
        if missing and self._interrupted(job, state):
            if not state.upper().startswith(INTERRUPTED_STATES):  # the job's own marker said so
                why = f"interrupted: {detail}" if detail else "interrupted"  # before sacct does
            job.attempts[-1]["stopped"] = True  # not a failure: it does not count
            n = self.interrupts[job.name] = self.interrupts.get(job.name, 0) + 1
            if n <= MAX_INTERRUPTS:
                job.state, job.reason = "pending", why
                self.say(f"{where} was stopped from outside ({why}); submitting it again")
            else:
                job.state, job.reason = "open", why
                self.say(f"{where} was stopped from outside {n} times: {len(missing)} case(s) "
                         "left open for --resume")  # fmt: skip
            self.ledger.save()
            return
        stopped = bool(job.attempts and job.attempts[-1].get("stopped"))
        if not missing:
            job.state, job.reason = "done", ""
            self.say(f"{where} done")
        elif stopped or job.counted < MAX_ATTEMPTS:
            job.state, job.reason = "pending", why  # submitted again for what is missing
            if not stopped:
                self.say(f"{where} ended without {len(missing)} row(s) ({why}); submitting again")
        else:
            job.state, job.reason = "failed", why
            self.say(f"{where} failed again ({why}): {len(missing)} case(s) become error rows")
            self._failure_rows(job, f"{self.kind} job {job.job_id} failed twice ({why})")
        self.ledger.save()

    def _interrupted(self, job: JobRecord, state: str) -> bool:
        """Whether the job's last submission was stopped from outside (see the docstring)."""
        from hilobench.cluster.job import INTERRUPTED

        marker = self.ledger.job_dir(job) / INTERRUPTED
        return state.upper().startswith(INTERRUPTED_STATES) or marker.is_file()

    @property
    def _where(self) -> str:
        return f"{self.ledger.partition}: " if self.ledger.partition else ""

    def _failure_rows(self, job: JobRecord, message: str) -> None:
        from hilobench.run.runner import provenance  # git calls, once per failed job
        from hilobench.run.worker import failure_row  # torch ~1.5 s: only when a job failed

        spec = self.ledger.spec(job)
        items = {k: it for u in spec["units"] for k, it in zip(_keys(u), u["items"], strict=True)}
        env_id = str(self.run.env().get("env_id", ""))
        prov = provenance(bool(spec.get("isolate", True)), exclude=[self.run.path])
        groups = {k: (u.get("group") or {}).get("name") for u in spec["units"] for k in _keys(u)}
        rows = []
        for key in self.stream.missing(job):
            row = dict(failure_row(items[key]["case"], message, env_id=env_id))
            row.update(prov, suite=self.ledger.suite, case_id=items[key]["id"])
            row["job_id"] = str(job.job_id)
            if self.ledger.suite_hash is not None:
                row["suite_hash"] = self.ledger.suite_hash
            if groups.get(key):
                row["group"] = groups[key]
            self.stream.done.add(key)
            rows.append(row)
        self.run.append_rows(rows)
        self.landed += rows

    # -- submitting ------------------------------------------------------------------------
    def _submit(self, jobs: list[JobRecord]) -> None:
        from hilobench.cluster.job import INTERRUPTED, run_packed
        from hilobench.run.runner import deferred_signals

        # one array per CPU request: without --exclusive a job asks for its own threads
        batches: dict[int | None, list[tuple[JobRecord, dict[str, Any]]]] = {}
        for job in jobs:
            spec = self.ledger.spec(job)
            units = [u for u in (without(u, self.stream.done) for u in spec["units"]) if u]
            spec = {**spec, "units": units}
            cpus = None if self.settings.exclusive else job_cpus(spec, self.settings)
            batches.setdefault(cpus, []).append((job, spec))
            self.stream.repair(job)
            (self.ledger.job_dir(job) / INTERRUPTED).unlink(missing_ok=True)
        with deferred_signals():  # a job id is on disk before a stop signal is acted on
            for cpus, batch in batches.items():
                if self.kind == "slurm":
                    self.executor.update_parameters(
                        **slurm_parameters(self.settings, self.ledger.partition, cpus)
                    )
                submitted = self.executor.map_array(run_packed, [spec for _, spec in batch])
                for (job, _), sj in zip(batch, submitted, strict=True):
                    job.attempts.append({"job_id": str(sj.job_id), "at": time.time()})
                    job.state = "submitted"
                    self.live[job.name] = sj
            self.ledger.save()
        for job in jobs:
            self.say(f"{self._where}{job.name} submitted (job {job.job_id})")

    def stop(self) -> None:
        """The launcher is stopping: local jobs stop with it (their finished rows are kept and
        the stopped submission does not count as a failure); SLURM jobs keep running."""
        if self.kind != "local":
            return
        for job in self.ledger.jobs:
            if job.state != "submitted":
                continue
            sj = self.live.get(job.name)
            proc = getattr(sj, "_process", None)
            if sj is not None and proc is not None:
                sj.cancel(check=False)
                try:
                    proc.wait(timeout=STOP_WAIT_S)
                except Exception:  # still there: it goes now
                    proc.kill()
                    proc.wait()
            elif _local_alive(str(job.job_id)):
                continue  # a job of an earlier launcher: it ends on its own, --resume waits
            self._pull(job)
            job.attempts[-1]["stopped"] = True
            job.state = "pending" if self.stream.missing(job) else "done"
            self.live.pop(job.name, None)
        self.ledger.save()


def _keys(unit: dict[str, Any]) -> list[str]:
    from hilobench.cluster.packing import unit_keys

    return unit_keys(unit)


def _outcome(sj: Any) -> str:
    """Why a job ended without a result: the job's exception, else its log's last line."""
    paths = sj.paths
    if paths.result_pickle.exists():
        from submitit.core.utils import pickle_load

        try:
            outcome, value = pickle_load(paths.result_pickle)
        except Exception as e:  # a result file cut short
            return f"unreadable result ({type(e).__name__})"
        return _last_line(str(value)) if outcome == "error" else ""
    for log in (paths.stderr, paths.stdout):
        try:
            tail = _last_line(Path(log).read_text(encoding="utf-8", errors="replace")[-4000:])
        except OSError:
            continue
        if tail:
            return f"no result; log: {tail}"[:300]
    return "no result and no log"


def _local_alive(job_id: str) -> bool:
    """Whether a local job's controller (its process id is the job id) is still running: a
    zombie or another program under a reused id is not."""
    try:
        pid = int(job_id)
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
    except (ValueError, OSError, IndexError):
        return False
    return state != "Z" and b"submitit" in cmd
