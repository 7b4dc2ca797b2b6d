"""The worker's job protocol: each kind of job a worker runs, as a dataclass, and the JSON
form it travels in (``JOB.json``, ``OUT.json``; see :mod:`hilobench.run.worker`).

The JSON form is a contract between revisions (the gate hands a job written by one revision's
code to another revision's worker), so it stays a flat object with a ``kind``: a job's fields
are its JSON keys, and a field a job does not know is ignored rather than refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from hilobench.core.row import Row


@dataclass
class CaseJob:
    """Measure one case: counts, memory and (``timed``) its timing."""

    kind: ClassVar[str] = "case"
    case: dict[str, Any]
    case_id: str | None = None
    env_id: str = ""
    count: bool = True
    timed: bool = True
    peak_macs_per_s: float | None = None


@dataclass
class GroupJob:
    """Time the members of a compare group round by round; ``rows`` hold each member's counts
    and memory, measured beforehand, and ``ref`` the index of the reference member."""

    kind: ClassVar[str] = "group"
    group: str
    cases: list[dict[str, Any]]
    rows: list[Row]
    ref: int | None = None
    case_ids: list[str] | None = None
    peak_macs_per_s: float | None = None
    #: where the worker rewrites the group's record after each round (run/rounds.py)
    partial_path: str | None = None
    #: stored rounds to continue (a stopped group's record), and the code/machine stamp
    resume: dict[str, Any] | None = None
    stamp: dict[str, Any] | None = None


@dataclass
class PeakJob:
    """The device's GEMM rate, for the roofline column."""

    kind: ClassVar[str] = "peak"
    device: str
    dtype: str


@dataclass
class FreeJob:
    """The device's free memory, read where no other context holds any."""

    kind: ClassVar[str] = "free"
    device: str


@dataclass
class GateJob:
    """One revision's side of ``hilobench gate`` (:mod:`hilobench.gate.side_worker`)."""

    kind: ClassVar[str] = "gate"
    protocol: int | None = None
    cases: list[dict[str, Any]] = field(default_factory=list)
    count: bool = True


Job = CaseJob | GroupJob | PeakJob | FreeJob | GateJob
#: Every job class by its ``kind``.
JOB_TYPES: dict[str, type[Job]] = {
    c.kind: c for c in (CaseJob, GroupJob, PeakJob, FreeJob, GateJob)
}


def job_to_json(job: Job) -> dict[str, Any]:
    """A job as the worker reads it."""
    return {"kind": job.kind, **asdict(job)}


def job_from_json(data: dict[str, Any]) -> Job:
    """The job a JSON object describes; ValueError naming the problem if it describes none."""
    kind = data.get("kind")
    cls = JOB_TYPES.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown job kind {kind!r}; known: {', '.join(JOB_TYPES)}")
    known = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in known})
    except TypeError as e:  # a required field is missing
        raise ValueError(f"bad {kind} job: {e}") from None


@dataclass
class JobResult:
    """What a worker hands back: its rows (a job's answer is a list of rows, even for one)."""

    rows: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobResult:
        rows = data.get("rows") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise ValueError("a worker result must be {'rows': [...]}")
        return cls(rows)
