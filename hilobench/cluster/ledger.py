"""A cluster run's memory: which jobs exist, their scheduler ids, and the rows they wrote.

``jobs.json`` in the run directory lists every packed job before the first is submitted, and
each submission's job id the moment the scheduler gives it, so a launcher that is stopped or
killed can be started again (``--resume``) and pick up every job by id: finished ones are
read, running ones waited for, failed ones resubmitted once. Each job's spec lies in
``jobs/<name>/spec.json`` and its rows in ``jobs/<name>/rows.jsonl`` (written by the job);
:class:`RowStream` copies rows from there into the run's ``rows.jsonl`` as they land, each case
once, however often the stream is read again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hilobench.core.errors import ConfigError
from hilobench.core.fileio import make_dir, write_text_atomic
from hilobench.store.reader import ENV, ROWS, check_row, read_json, repair_torn_tail

LEDGER = "jobs.json"
JOBS_DIR = "jobs"
SUBMITIT_DIR = "submitit"
LEDGER_VERSION = 1
#: Submissions a job gets that ended without all its rows (the first and one resubmission).
MAX_ATTEMPTS = 2


@dataclass
class JobRecord:
    """One packed job: its case keys, its submissions, and how it ended."""

    name: str
    keys: list[str]
    attempts: list[dict[str, Any]] = field(default_factory=list)
    state: str = "pending"  # pending | submitted | done | failed
    reason: str = ""

    @property
    def counted(self) -> int:
        """Submissions that count against the resubmission: not those the user stopped."""
        return sum(1 for a in self.attempts if not a.get("stopped"))

    @property
    def job_id(self) -> str | None:
        return str(self.attempts[-1]["job_id"]) if self.attempts else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)  # every field is plain JSON already


@dataclass
class Ledger:
    """``jobs.json``: the run's executor, partition, suite and jobs."""

    path: Path
    executor: str
    partition: str | None
    suite: str
    suite_hash: str | None
    jobs: list[JobRecord]

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    def job_dir(self, job: JobRecord) -> Path:
        return self.run_dir / JOBS_DIR / job.name

    def spec(self, job: JobRecord) -> dict[str, Any]:
        data = read_json(self.job_dir(job) / "spec.json", "job spec")
        if not isinstance(data, dict) or not isinstance(data.get("units"), list):
            raise ConfigError(f"{str(self.job_dir(job))!r}: job spec without units")
        return data

    def save(self) -> None:
        data = {
            "version": LEDGER_VERSION,
            "executor": self.executor,
            "partition": self.partition,
            "suite": self.suite,
            "suite_hash": self.suite_hash,
            "jobs": [j.to_json() for j in self.jobs],
        }
        write_text_atomic(self.path, json.dumps(data, indent=1) + "\n")


def create_ledger(
    run_dir: Path,
    *,
    executor: str,
    partition: str | None,
    suite: str,
    suite_hash: str | None,
    specs: list[dict[str, Any]],
    keys: list[list[str]],
) -> Ledger:
    """Write every job's spec and the ledger listing them, before anything is submitted."""
    jobs = []
    for i, (spec, ks) in enumerate(zip(specs, keys, strict=True)):
        job = JobRecord(f"j{i:03d}", ks)
        d = make_dir(run_dir / JOBS_DIR / job.name)
        spec = {**spec, "dir": str(d.resolve())}
        write_text_atomic(d / "spec.json", json.dumps(spec, default=str) + "\n")
        jobs.append(job)
    ledger = Ledger(run_dir / LEDGER, executor, partition, suite, suite_hash, jobs)
    ledger.save()
    return ledger


def load_ledger(run_dir: Path) -> Ledger:
    """The ledger of a cluster run, checked; one-line ConfigError when it is not one."""
    path = run_dir / LEDGER
    data = read_json(path, "job ledger")
    where = f"{str(path)!r}"
    if not isinstance(data, dict) or data.get("version") != LEDGER_VERSION:
        raise ConfigError(f"{where}: not a version-{LEDGER_VERSION} job ledger")
    raw = data.get("jobs")
    if not isinstance(raw, list) or not all(isinstance(j, dict) for j in raw):
        raise ConfigError(f"{where}: 'jobs' must be a list of job records")
    jobs = []
    for j in raw:
        name, keys, attempts = j.get("name"), j.get("keys"), j.get("attempts", [])
        if not isinstance(name, str) or not name.startswith("j") or "/" in name:
            raise ConfigError(f"{where}: bad job name {name!r}")
        if not isinstance(keys, list) or not isinstance(attempts, list):
            raise ConfigError(f"{where}: job {name!r} needs a 'keys' and an 'attempts' list")
        jobs.append(
            JobRecord(
                name,
                [str(k) for k in keys],
                attempts,
                str(j.get("state", "pending")),
                str(j.get("reason", "")),
            )  # fmt: skip
        )
    return Ledger(
        path,
        str(data.get("executor")),
        data.get("partition"),
        str(data.get("suite")),
        data.get("suite_hash"),
        jobs,
    )


class RowStream:
    """Copies whole rows from the jobs' files into the run's ``rows.jsonl``, each case once."""

    def __init__(self, ledger: Ledger, done: set[str]):
        self.ledger = ledger
        self.done = done  # case keys the run directory already holds
        self.offsets: dict[str, int] = {}
        self.envs: dict[str, dict[str, Any]] = {}

    def pull(self, job: JobRecord) -> list[dict[str, Any]]:
        """New whole rows of ``job`` not yet in the run directory (a torn last line waits)."""
        path = self.ledger.job_dir(job) / ROWS
        try:
            with open(path, "rb") as f:
                f.seek(self.offsets.get(job.name, 0))
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        self.offsets[job.name] = self.offsets.get(job.name, 0) + end
        rows = []
        for line in data[:end].splitlines():
            try:
                row = check_row(json.loads(line), f"{path}")
            except (ValueError, ConfigError):
                continue  # a line torn by a killed job and appended to: its case runs again
            key = str(row["case_key"])
            if key in job.keys and key not in self.done:
                self.done.add(key)
                rows.append(row)
        return rows

    def env(self, job: JobRecord) -> dict[str, Any]:
        """The environment the job recorded on its node ({} before it started)."""
        if job.name not in self.envs:
            p = self.ledger.job_dir(job) / ENV
            try:
                data = read_json(p, "job environment") if p.is_file() else {}
            except ConfigError:
                data = {}
            if isinstance(data, dict) and data:
                self.envs[job.name] = data
        return self.envs.get(job.name, {})

    def repair(self, job: JobRecord) -> None:
        """Cut a row torn by a killed job off its file before the job is submitted again."""
        path = self.ledger.job_dir(job) / ROWS
        if path.is_file():
            repair_torn_tail(path)
            self.offsets.pop(job.name, None)

    def missing(self, job: JobRecord) -> list[str]:
        return [k for k in job.keys if k not in self.done]
