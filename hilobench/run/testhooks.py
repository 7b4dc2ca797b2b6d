"""Fault injection for the runner's and the cluster executor's own tests; never set it for a
real run. Kept here, out of the worker's and the job's main path, which only ask this module
whether a case has a fault.

``HILOBENCH_TEST_FAULT="KIND:MATCH[,KIND:MATCH...]"`` where MATCH is a case id, a case name or
a case key and KIND is one of:

- ``oom``: raise ``torch.OutOfMemoryError`` while measuring the case;
- ``error``: raise ``RuntimeError`` while measuring it;
- ``exit``: the worker process exits at once with code :data:`EXIT_FAULT` and no result;
- ``hang``: the worker sleeps until it is killed;
- ``term``: the worker is stopped by SIGTERM, as ``scancel`` or a preemption stops it;
- ``jobexit``: a whole scheduler job exits with :data:`JOB_EXIT_FAULT` just before the unit
  holding the case (:mod:`hilobench.cluster.job`), leaving the units before it measured.

``exit``, ``hang`` and ``term`` act only inside a worker process.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from hilobench.core.case import Case

FAULT_ENV = "HILOBENCH_TEST_FAULT"
FAULT_KINDS = ("oom", "error", "exit", "hang", "term", "jobexit")
#: Exit code of a worker ended by an ``exit`` fault.
EXIT_FAULT = 70
#: Exit code of a scheduler job ended by a ``jobexit`` fault.
JOB_EXIT_FAULT = 75


def _faults() -> list[tuple[str, str]]:
    spec = os.environ.get(FAULT_ENV, "")
    out = []
    for part in spec.split(","):
        kind, sep, match = part.strip().partition(":")
        if sep and kind in FAULT_KINDS and match:
            out.append((kind, match))
    return out


def fault_for(case_json: dict[str, Any], case_id: str | None = None) -> str | None:
    """The injected fault that applies to a case, if any (None, at once, when none is set)."""
    faults = _faults()
    if not faults:
        return None
    key = Case.from_json(case_json).key
    for kind, match in faults:
        if match in (case_id, case_json.get("name"), key):
            return kind
    return None


def raise_fault(case_json: dict[str, Any], case_id: str | None = None) -> None:
    """Raise the ``oom`` or ``error`` fault of a case being measured, if it has one."""
    kind = fault_for(case_json, case_id)
    if kind == "oom":
        import torch  # torch ~1.5 s: the worker has it loaded by now

        raise torch.OutOfMemoryError("injected out of memory (test fault)")
    if kind == "error":
        raise RuntimeError("injected failure (test fault)")


def process_fault(cases: list[dict[str, Any]], ids: list[str | None]) -> None:
    """Act out an ``exit``, ``hang`` or ``term`` fault of a worker's cases, if one has it."""
    for c, cid in zip(cases, ids, strict=True):
        kind = fault_for(c, cid)
        if kind == "exit":
            os._exit(EXIT_FAULT)
        if kind == "term":
            os.kill(os.getpid(), signal.SIGTERM)
        if kind == "hang":
            while True:
                time.sleep(60)


def job_fault(unit: dict[str, Any]) -> None:
    """End the scheduler job now if a case of ``unit`` (its JSON form) has a ``jobexit``."""
    for item in unit["items"]:
        if fault_for(item["case"], item["id"]) == "jobexit":
            sys.stderr.write("hilobench job: exiting on purpose (test fault jobexit)\n")
            sys.stderr.flush()
            os._exit(JOB_EXIT_FAULT)
