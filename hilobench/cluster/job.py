"""What one scheduler job runs on its node: packed units, measured by the ordinary runner.

:func:`run_packed` is the function submitit pickles (by reference) into every job. It measures
its units with :class:`hilobench.run.runner.Runner` exactly as ``suite run`` does on one machine
(a fresh worker process per case unless the spec says otherwise), so a row measured on a node
is the row the plain runner writes. Rows go to the job's own ``rows.jsonl`` in its job
directory, appended and synced as each unit finishes; the launcher streams them into the run
directory, of which it is the only writer. The node's environment goes beside them in
``env.json``, so the run directory describes the machine that measured, not the launcher.

Every row records the scheduler's allocation (:func:`job_columns`: ``job_id``, ``job_node``,
``job_cpus``), so a table shows where and on how many CPUs it was measured. A job stopped from
outside (``scancel``, preemption: its worker ends on SIGTERM) leaves an ``interrupted`` marker
in its job directory and no row for the case it was measuring; the launcher submits it again
rather than counting a failure, and a job run again (SLURM's requeue too) skips every case it
already wrote.

A job spec is plain JSON: ``{"dir": ..., "units": [...], "isolate": bool, "roofline": bool,
"suite": name, "suite_hash": hex}`` with units as :func:`hilobench.cluster.packing.unit_to_json`
writes them.

Tests fail a whole job through :mod:`hilobench.run.testhooks` (``jobexit``).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from hilobench.cluster.packing import unit_from_json, without
from hilobench.core.fileio import write_text_atomic
from hilobench.run.testhooks import job_fault

#: File in a job's directory that says its last submission was stopped from outside.
INTERRUPTED = "interrupted"


class JobInterrupted(Exception):
    """The job was stopped from outside while it measured (see the module docstring)."""


def _first_int(text: str | None) -> int | None:
    """The leading count of a SLURM CPU list like ``4`` or ``4(x2),2``; None if there is none."""
    digits = ""
    for ch in (text or "").strip():
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else None


def job_columns(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The row columns that say which job measured, on which node, with how many CPUs
    allocated: SLURM's variables in a SLURM job, this process's own otherwise (local jobs)."""
    env = dict(os.environ if env is None else env)
    if "SLURM_JOB_ID" in env:
        arr, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
        return {
            "job_id": f"{arr}_{task}" if arr and task else env["SLURM_JOB_ID"],
            "job_node": env.get("SLURMD_NODENAME") or socket.gethostname(),
            "job_cpus": _first_int(env.get("SLURM_CPUS_ON_NODE"))
            or _first_int(env.get("SLURM_JOB_CPUS_PER_NODE")),
        }
    return {
        "job_id": env.get("SUBMITIT_LOCAL_JOB_ID") or str(os.getpid()),
        "job_node": socket.gethostname(),
        "job_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }


def run_packed(spec: dict[str, Any]) -> dict[str, Any]:
    """Measure a job's units on this node; return how many rows it wrote and where."""
    if spec["units"]:
        job_fault(spec["units"][0])  # before the imports: a failing job fails fast
    # torch (~1.5 s) through the runner's measuring code: this runs on the node only
    from hilobench.measure.env import env_id, fingerprint
    from hilobench.measure.timing import set_threads
    from hilobench.run.dircheck import done_keys, repair_tail
    from hilobench.run.maxbatch import search_suite_case
    from hilobench.run.runner import Runner
    from hilobench.store.writer import RunDir

    units = spec["units"]
    if not units:
        return {"rows": 0, "dir": spec["dir"]}
    first = unit_from_json(units[0]).items[0].case
    env = fingerprint(first.device, set_threads(first.threads))
    eid = env_id(env)
    run = RunDir(Path(spec["dir"])).create({**env, "env_id": eid})
    repair_tail(run)  # a row torn when an earlier run of this job was killed
    done = done_keys(run)  # what an earlier run of this job (a requeue) already measured
    runner = Runner(
        run,
        env_id=eid,
        isolate=bool(spec.get("isolate", True)),
        suite=spec.get("suite"),
        suite_hash=spec.get("suite_hash"),
        roofline=bool(spec.get("roofline", True)),
        searcher=search_suite_case,
    )
    columns = job_columns()
    runner.provenance.update(columns)
    try:
        for unit in units:
            left = without(unit, done)
            if left is None:
                continue
            job_fault(left)
            runner.run_units([unit_from_json(left)])
    except KeyboardInterrupt as e:  # a signal from outside: the launcher submits the rest again
        why = str(e) or "stopped by a signal"
        write_text_atomic(run.path / INTERRUPTED, f"{columns['job_id']}: {why}\n")
        raise JobInterrupted(f"job {columns['job_id']} interrupted ({why})") from None
    return {"rows": len(runner.rows), "dir": spec["dir"], "env_id": eid}
