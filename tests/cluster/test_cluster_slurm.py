"""The SLURM executor against a real scheduler: ``make test-slurm`` (root; it starts one with
``benchmarks/local_slurm.sh``). Skipped unless ``HILOBENCH_REAL_SLURM=1``: CI has no SLURM and
uses the fake one (tests/cluster/test_cluster_local.py).

What a real scheduler shows that the fake cannot: the batch script asks for the CPUs it
measures with and gets them (the rows record the allocation), and a job cancelled while it
measures (``scancel``) is submitted again instead of leaving an ``error`` row behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hilobench.core.row import is_measured
from hilobench.store.writer import load_rows
from tests.cluster.test_cluster_local import FAST, CliRunner, _suite

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        os.environ.get("HILOBENCH_REAL_SLURM") != "1" or shutil.which("sbatch") is None,
        reason="needs a real SLURM (make test-slurm) and HILOBENCH_REAL_SLURM=1",
    ),
]

PARTITION = os.environ.get("HILOBENCH_SLURM_PARTITION", "debug")


def _scripts(run: Path) -> list[str]:
    return [p.read_text() for p in sorted((run / "submitit").glob("*_submission.sh"))]


def _node_cpus() -> tuple[str, int]:
    """The partition's (first) node and its CPUs, as SLURM sees them."""
    out = subprocess.run(["sinfo", "-h", "-p", PARTITION, "-N", "-o", "%N %c"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    node, cpus = out.split()[:2]
    return node, int(cpus)


def _ledger_ids(run: Path) -> list[list[str]]:
    jobs = json.loads((run / "jobs.json").read_text())["jobs"]
    return [[a["job_id"] for a in j["attempts"]] for j in jobs]


@pytest.mark.timeout(600)
def test_exclusive_job_on_real_slurm_records_job_node_and_cpus(
    tmp_path: Path, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hilobench.cluster.launcher import POLL_S

    monkeypatch.setitem(POLL_S, "slurm", 1.0)
    run = tmp_path / "run"
    code, _, err = cli(["suite", "run", str(_suite(tmp_path)), "--executor", "slurm", "--time",
                        "10", "--partition", PARTITION, "--out", str(run), *FAST])  # fmt: skip
    assert code == 0, err
    (script,) = _scripts(run)
    assert "#SBATCH --exclusive\n" in script and "--cpus-per-task" not in script
    node, cpus = _node_cpus()
    rows = load_rows(run)
    assert {r["case_id"] for r in rows} == {"msa", "hilo", "lone"}
    assert all(is_measured(r) for r in rows)
    (ids,) = _ledger_ids(run)
    assert {r["job_id"] for r in rows} == {ids[-1]}
    assert {r["job_node"] for r in rows} == {node}
    assert {r["job_cpus"] for r in rows} == {cpus}  # the whole node


@pytest.mark.timeout(600)
def test_no_exclusive_asks_for_exactly_the_threads(
    tmp_path: Path, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hilobench.cluster.launcher import POLL_S

    monkeypatch.setitem(POLL_S, "slurm", 1.0)
    run = tmp_path / "run"
    code, _, err = cli(["suite", "run", str(_suite(tmp_path)), "--executor", "slurm",
                        "--partition", PARTITION, "--time", "10", "--no-exclusive",
                        "--set", "threads=1", "--out", str(run), *FAST])  # fmt: skip
    assert code == 0, err
    (script,) = _scripts(run)
    assert "#SBATCH --cpus-per-task=1\n" in script and "--exclusive" not in script
    rows = load_rows(run)
    assert len(rows) == 3 and all(is_measured(r) and r["threads"] == 1 for r in rows)
    assert {r["job_cpus"] for r in rows} == {1}


def _job_runs_a_worker(job: str) -> bool:
    """Whether a process of the job (``scontrol listpids``) is measuring a case: a worker of
    its own, or a child forked off the preloaded worker (which shares the server's command
    line, so two such processes mean one is a case)."""
    out = subprocess.run(["scontrol", "listpids", job], capture_output=True, text=True).stdout
    forked = 0
    for line in out.splitlines()[1:]:
        pid = line.split()[0] if line.split() else ""
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if b"hilobench.run.worker" in cmdline:
            return True
        forked += b"hilobench.run.forkserver" in cmdline
    return forked >= 2


def _wait_running(run: Path, proc: subprocess.Popen[bytes], deadline_s: float = 240) -> str:
    """The id of the first job once SLURM runs it and one of its workers has started."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            ids = _ledger_ids(run)
        except (OSError, ValueError, KeyError):
            ids = []
        if ids and ids[0]:
            job = ids[0][0]
            state = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"],
                                   capture_output=True, text=True).stdout.strip()  # fmt: skip
            if state == "RUNNING" and _job_runs_a_worker(job):
                return job
        time.sleep(0.2)
    raise AssertionError("the job never ran a worker")


@pytest.mark.timeout(900)
def test_scancel_of_a_running_job_resubmits_it_and_every_case_ends_ok(tmp_path: Path) -> None:
    run = tmp_path / "run"
    suite = _suite(tmp_path, lone=2)
    cmd = [sys.executable, "-m", "hilobench", "suite", "run", str(suite), "--executor", "slurm",
           "--partition", PARTITION, "--time", "10", "--out", str(run), "--no-roofline",
           "--set", "count=false", "--budget", "1", "--format", "json"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        job = _wait_running(run, proc)
        subprocess.run(["scancel", job], check=True)
        _, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = stderr.decode()
    assert proc.returncode == 0, text
    # the scheduler's state, or the job's own word when it ended before the scheduler knew
    assert re.search(r"stopped from outside \((CANCELLED|interrupted)", text), text
    rows = load_rows(run)
    assert len(rows) == 4 and len({r["case_key"] for r in rows}) == 4
    assert all(is_measured(r) for r in rows), [r.get("message") for r in rows]
    (ids,) = _ledger_ids(run)
    assert ids[0] == job and len(ids) == 2  # cancelled once, submitted again once
    (first,) = json.loads((run / "jobs.json").read_text())["jobs"]
    assert first["attempts"][0].get("stopped") and first["state"] == "done"
    assert all(r["job_id"] in ids for r in rows)
