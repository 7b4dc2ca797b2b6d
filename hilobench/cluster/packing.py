"""What a suite run on a cluster asks for: scheduler settings, and units packed into jobs.

A job is what a scheduler runs on one node: a list of :class:`~hilobench.core.plan.Unit` s, each
whole, so a compare group is always timed interleaved in one process on one machine. Units are
packed in suite order until a job's estimated work would pass its share of the time limit (or
``units_per_job``); a unit larger than that gets a job of its own rather than being split.

Settings come from the suite's ``slurm:`` block, then the command line, each value checked by
:func:`check_setting` (one line naming the field, exit 2). Nothing here imports submitit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from hilobench.core.errors import ConfigError
from hilobench.core.plan import CompareGroup, SuiteCase, Unit

#: Fields of a suite's ``slurm:`` block (and the matching ``suite run`` options).
SLURM_KEYS = (
    "partition",
    "gpus_per_node",
    "constraint",
    "time",
    "array_parallelism",
    "units_per_job",
    "cpus_per_task",
    "exclusive",
)
#: A job is packed to at most this share of its time limit: start-up, imports and the GEMM peak
#: come on top of the estimate, and an estimate is only an estimate.
PACK_SHARE = 0.5
DEFAULT_TIME_MIN = 60
#: Most partitions (machine classes, so run directories) one call may name.
MAX_PARTITIONS = 16
#: Largest count a setting takes (array parallelism, units per job, CPUs), and longest time.
MAX_COUNT = 100_000
MAX_TIME_MIN = 366 * 1440
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class ClusterSettings:
    """Scheduler settings of one run; ``partitions`` holds one entry per machine class."""

    partitions: tuple[str, ...] = ()
    gpus_per_node: int = 0
    constraint: str | None = None
    time_min: int = DEFAULT_TIME_MIN
    array_parallelism: int | None = None
    units_per_job: int | None = None
    cpus_per_task: int | None = None
    #: The whole node for each job (SLURM ``--exclusive``); without it a job asks for exactly
    #: its cases' threads as CPUs, so a benchmark never shares the cores it measures on.
    exclusive: bool = True

    def for_partition(self, partition: str | None) -> ClusterSettings:
        return replace(self, partitions=(partition,) if partition else ())


def parse_time(v: Any) -> int:
    """Minutes from an integer or SLURM's time text (``MM``, ``MM:SS``, ``HH:MM:SS``,
    ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``); ValueError if bad."""
    if isinstance(v, int) and not isinstance(v, bool):
        if v < 1:
            raise ValueError(f"expected at least 1 minute, got {v}")
        return v
    if not isinstance(v, str):
        raise ValueError(f"expected minutes or 'HH:MM:SS', got {v!r}")
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", v.strip())
    if not m:
        raise ValueError(f"expected minutes or SLURM time like '2:00:00' or '1-00', got {v!r}")
    days, a, b, c = (int(x) if x else 0 for x in m.groups())
    d = m.group(1) is not None
    if m.group(3) is None:  # "MM", or "D-HH"
        minutes = days * 1440 + a * 60 if d else a
    elif m.group(4) is None:  # "MM:SS", or "D-HH:MM"
        minutes = days * 1440 + a * 60 + b if d else a + (1 if b else 0)
    else:  # "[D-]HH:MM:SS", seconds rounded up to a minute
        minutes = days * 1440 + a * 60 + b + (1 if c else 0)
    if minutes < 1:
        raise ValueError(f"expected at least 1 minute, got {v!r}")
    return minutes


def check_setting(key: str, v: Any) -> Any:
    """One scheduler setting, normalised; ValueError with the problem (the caller says where)."""
    if key == "partition":
        parts = v if isinstance(v, list) else str(v).split(",") if isinstance(v, str) else None
        if not parts or not all(isinstance(p, str) and _NAME.match(p.strip()) for p in parts):
            raise ValueError(f"expected partition names (letters, digits, _.-), got {v!r}")
        names = tuple(dict.fromkeys(p.strip() for p in parts))
        if len(names) > MAX_PARTITIONS:
            raise ValueError(f"at most {MAX_PARTITIONS} partitions (a run directory each)")
        return names
    if key == "constraint":
        if not isinstance(v, str) or not v.strip() or "\n" in v:
            raise ValueError(f"expected a SLURM constraint like 'a100&sxm', got {v!r}")
        return v.strip()
    if key == "time":
        minutes = parse_time(v)
        if minutes > MAX_TIME_MIN:
            raise ValueError(f"expected at most {MAX_TIME_MIN} minutes, got {v!r}")
        return minutes
    if key == "exclusive":
        if not isinstance(v, bool):
            raise ValueError(f"expected true or false, got {v!r}")
        return v
    if key in ("gpus_per_node",):
        if not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 64):
            raise ValueError(f"expected an integer in [0, 64], got {v!r}")
        return v
    if key in ("array_parallelism", "units_per_job", "cpus_per_task"):
        if not (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_COUNT):
            raise ValueError(f"expected an integer in [1, {MAX_COUNT}], got {v!r}")
        return v
    raise ValueError(f"unknown field; allowed: {', '.join(SLURM_KEYS)}")


def settings_from(block: dict[str, Any], overrides: dict[str, Any]) -> ClusterSettings:
    """The run's settings: the suite's ``slurm:`` block, then the command line's (not None)."""
    merged = {**block, **{k: v for k, v in overrides.items() if v is not None}}
    values: dict[str, Any] = {}
    for k, v in merged.items():
        try:
            values[k] = check_setting(k, v)
        except ValueError as e:
            raise ConfigError(f"slurm setting {k!r}: {e}") from None
    return ClusterSettings(
        partitions=values.get("partition", ()),
        gpus_per_node=values.get("gpus_per_node", 0),
        constraint=values.get("constraint"),
        time_min=values.get("time", DEFAULT_TIME_MIN),
        array_parallelism=values.get("array_parallelism"),
        units_per_job=values.get("units_per_job"),
        cpus_per_task=values.get("cpus_per_task"),
        exclusive=values.get("exclusive", True),
    )


def pack(units: list[Unit], settings: ClusterSettings) -> list[list[Unit]]:
    """Units → jobs in suite order, never splitting a unit (see the module docstring)."""
    limit_s = PACK_SHARE * 60.0 * settings.time_min
    jobs: list[list[Unit]] = []
    load = 0.0
    for u in units:
        full = bool(jobs) and (
            load + u.weight > limit_s
            or (settings.units_per_job is not None and len(jobs[-1]) >= settings.units_per_job)
        )
        if not jobs or full:
            jobs.append([])
            load = 0.0
        jobs[-1].append(u)
        load += u.weight
    return jobs


def job_cpus(spec: dict[str, Any], settings: ClusterSettings) -> int | None:
    """CPUs a job asks for when it does not take the whole node: ``cpus_per_task`` if set, else
    the most threads any of its cases measures with (None: a case leaves threads to the
    machine, which only the whole node answers)."""
    if settings.cpus_per_task:
        return settings.cpus_per_task
    threads = [i["case"].get("threads") for u in spec["units"] for i in u["items"]]
    if not threads or any(t is None for t in threads):
        return None
    return max(int(t) for t in threads)


def unit_to_json(u: Unit) -> dict[str, Any]:
    """A unit as a job spec carries it (plain JSON, so a job needs no suite file)."""
    return {
        "items": [
            {
                "case": sc.case.to_json(),
                "id": sc.id,
                "timeout": sc.timeout,
                "count": sc.count,
                "max_batch": sc.max_batch,
            }
            for sc in u.items
        ],
        "group": None
        if u.group is None
        else {
            "name": u.group.name,
            "members": list(u.group.members),
            "ref": u.group.reference,
            "across": u.group.across,
        },
        "ref": u.ref,
    }


def unit_from_json(d: dict[str, Any]) -> Unit:
    """The inverse of :func:`unit_to_json`."""

    items = [_item(i) for i in d["items"]]
    g = d.get("group")
    group = (
        None
        if g is None
        else CompareGroup(g["name"], tuple(g["members"]), g["ref"], g.get("across"))
    )
    return Unit(items, group, d.get("ref"))


def _item(i: dict[str, Any]) -> SuiteCase:
    from hilobench.core.case import Case

    return SuiteCase(
        Case.from_json(i["case"]),
        i["id"],
        timeout=i["timeout"],
        count=i["count"],
        max_batch=i.get("max_batch"),
    )


def unit_keys(d: dict[str, Any]) -> list[str]:
    """The row keys of a unit in its JSON form (a max_batch search's row has its own)."""
    return [_item(i).row_key for i in d["items"]]


def without(d: dict[str, Any], done: set[str]) -> dict[str, Any] | None:
    """The unit ``d`` less its cases in ``done`` (None when nothing is left); the reference
    index follows its member, or is None once the reference itself is done."""
    keys = unit_keys(d)
    keep = [i for i, k in enumerate(keys) if k not in done]
    if not keep:
        return None
    ref = d.get("ref")
    new_ref = keep.index(ref) if ref is not None and ref in keep else None
    return {**d, "items": [d["items"][i] for i in keep], "ref": new_ref}
