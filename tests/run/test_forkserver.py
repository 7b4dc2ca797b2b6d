"""The preloaded worker: each job still runs in a process of its own (a crash, a hang or a kill
of one case leaves the next to run), its rows say what a plain worker's say, and the runner's
environment and thread count of the moment reach the child."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from hilobench.core.case import Case
from hilobench.run import forkserver
from hilobench.run.runner import WorkerFailed, WorkerInterrupted, call_worker
from hilobench.run.testhooks import FAULT_ENV

pytestmark = pytest.mark.skipif(
    not forkserver.wanted({"kind": "peak", "device": "cpu"}),
    reason="no preloaded worker here (not Linux, or turned off)",
)

#: Columns that are measured (times, memory): everything else must match between workers.
MEASURED = ("_s", "_ms", "bytes", "per_s", "calls", "samples", "cov", "noisy", "bound", "roofline")


def job(name: str, threads: int, **kw: Any) -> dict[str, Any]:
    case = Case("layer", name, (56, 56), 2, threads=threads, budget=0.1,
                options=(("dim", 32), ("heads", 2)))  # fmt: skip
    return {"kind": "case", "case": case.to_json(), "case_id": name, "timed": False, **kw}


def server_pid() -> int:
    assert forkserver._server is not None and forkserver._server.alive()
    return forkserver._server.proc.pid


def test_rows_match_the_plain_worker_and_threads_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    (forked,) = call_worker(job("hilo", 1), 120.0)
    pid = server_pid()  # the job went through the preloaded worker
    (again,) = call_worker(job("hilo", 2), 120.0)
    assert server_pid() == pid and (forked["threads"], again["threads"]) == (1, 2)
    monkeypatch.setenv(forkserver.PRELOAD_ENV, "0")
    (plain,) = call_worker(job("hilo", 1), 120.0)
    assert forked["status"] == plain["status"] == "ok" and forked["macs"] > 0
    # the bound diagnosis traces two more calls only when the budget allows: a loaded machine
    # gives a note instead, in either worker
    optional = {"bound_note", "bound_busy", "traced_bytes"}
    assert set(forked) - optional == set(plain) - optional
    same = [k for k in plain if not any(m in k for m in MEASURED)]
    assert {k: forked[k] for k in same} == {k: plain[k] for k in same}


def test_crash_hang_and_kill_of_one_child_leave_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call_worker(job("msa", 1), 120.0)
    pid = server_pid()
    # set after the server started: each child gets the runner's environment of the moment
    monkeypatch.setenv(FAULT_ENV, "exit:sra,hang:wmsa,term:hilo")
    with pytest.raises(WorkerFailed, match="exited with code 70"):
        call_worker(job("sra", 1), 120.0)
    with pytest.raises(WorkerFailed, match="timed out after 3 s"):
        call_worker(job("wmsa", 1), 3.0)
    with pytest.raises(WorkerInterrupted, match="SIGTERM"):
        call_worker(job("hilo", 1), 120.0)
    (row,) = call_worker(job("msa", 1), 120.0)
    assert row["status"] == "ok" and server_pid() == pid


def test_a_dead_server_fails_its_job_and_the_next_job_gets_a_new_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call_worker(job("msa", 1), 120.0)
    pid = server_pid()
    monkeypatch.setenv(FAULT_ENV, "hang:wmsa")

    def kill_server() -> None:  # while the child hangs: the child dies with its server
        os.kill(pid, signal.SIGKILL)

    with pytest.raises(WorkerFailed, match="SIGKILL"):
        call_worker(job("wmsa", 1), 60.0, on_poll=kill_server)
    monkeypatch.delenv(FAULT_ENV)
    (row,) = call_worker(job("msa", 1), 120.0)
    assert row["status"] == "ok" and server_pid() != pid


def test_a_stop_from_outside_that_ends_the_server_interrupts_the_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A scheduler's scancel signals every process of the job at once: the server dies of the
    SIGTERM with its child, and the case is interrupted (stays open), not failed."""
    call_worker(job("msa", 1), 120.0)
    pid = server_pid()
    monkeypatch.setenv(FAULT_ENV, "hang:wmsa")

    def term_server() -> None:
        os.kill(pid, signal.SIGTERM)

    with pytest.raises(WorkerInterrupted, match="SIGTERM"):
        call_worker(job("wmsa", 1), 60.0, on_poll=term_server)
