"""What one scheduler job runs on its node: packed units, measured by the ordinary runner.

:func:`run_packed` is the function submitit pickles (by reference) into every job. It measures
its units with :class:`hilobench.runner.Runner` exactly as ``suite run`` does on one machine
(a fresh worker process per case unless the spec says otherwise), so a row measured on a node
is the row the plain runner writes. Rows go to the job's own ``rows.jsonl`` in its job
directory, appended and synced as each unit finishes; the launcher streams them into the run
directory, of which it is the only writer. The node's environment goes beside them in
``env.json``, so the run directory describes the machine that measured, not the launcher.

A job spec is plain JSON: ``{"dir": ..., "units": [...], "isolate": bool, "roofline": bool,
"suite": name, "suite_hash": hex}`` with units as :func:`hilobench.cluster_plan.unit_to_json`
writes them.

Test-only fault (see :mod:`hilobench.worker`): ``HILOBENCH_TEST_FAULT=jobexit:MATCH`` makes
the job process exit with code :data:`JOB_EXIT_FAULT` just before the unit holding a case that
MATCH names, leaving the units before it measured, so tests can fail a whole job.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from hilobench.cluster_plan import unit_from_json
from hilobench.worker import fault_for

JOB_EXIT_FAULT = 75


def _fault_exit(unit: dict[str, Any]) -> None:
    for item in unit["items"]:
        if fault_for(item["case"], item["id"]) == "jobexit":
            sys.stderr.write("hilobench job: exiting on purpose (test fault jobexit)\n")
            sys.stderr.flush()
            os._exit(JOB_EXIT_FAULT)


def run_packed(spec: dict[str, Any]) -> dict[str, Any]:
    """Measure a job's units on this node; return how many rows it wrote and where."""
    if spec["units"]:
        _fault_exit(spec["units"][0])  # before the imports: a failing job fails fast
    # torch (~1.5 s) through the runner's measuring code: this runs on the node only
    from hilobench.maxbatch import search_suite_case
    from hilobench.measure.env import env_id, fingerprint
    from hilobench.measure.timing import set_threads
    from hilobench.runner import Runner
    from hilobench.store import RunDir

    units = spec["units"]
    if not units:
        return {"rows": 0, "dir": spec["dir"]}
    first = unit_from_json(units[0]).items[0].case
    env = fingerprint(first.device, set_threads(first.threads))
    eid = env_id(env)
    run = RunDir(Path(spec["dir"])).create({**env, "env_id": eid})
    runner = Runner(
        run,
        env_id=eid,
        isolate=bool(spec.get("isolate", True)),
        suite=spec.get("suite"),
        suite_hash=spec.get("suite_hash"),
        roofline=bool(spec.get("roofline", True)),
        searcher=search_suite_case,
    )
    for unit in units:
        _fault_exit(unit)
        runner.run_units([unit_from_json(unit)])
    return {"rows": len(runner.rows), "dir": spec["dir"], "env_id": eid}
