"""Cluster runs through submitit's LocalExecutor: the code path of a SLURM run, on this machine.

The same rows as the plain runner; a compare group measured whole in one job; a job that fails
twice becomes failure rows with the scheduler's reason; a launcher stopped or killed mid-run
and resumed loses and repeats nothing. Each starts job processes that import torch: marked slow.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hilobench.cluster.launcher import _local_alive
from hilobench.core.errors import EXIT_CASES_FAILED
from hilobench.core.row import is_measured
from hilobench.run.lock import LOCK_NAME
from hilobench.store.writer import load_rows

CliRunner = Callable[[list[str]], tuple[int, str, str]]
FAST = ["--no-isolate", "--no-roofline", "--set", "count=false", "--format", "json"]


def _suite(tmp: Path, lone: int = 1) -> Path:
    """A compare group (msa, hilo) and ``lone`` cases of SRA alone, at tiny sizes."""
    res = ", ".join(str(112 + 16 * i) for i in range(lone))
    p = tmp / "c.yaml"
    p.write_text(
        "name: c\ndefaults: {device: cpu, batch: 1, dim: 32, heads: 2, tokens: 7x7, budget: 0.1}\n"
        "cases:\n  - layer: [msa, hilo]\n    res: 112\n"
        f"  - layer: sra\n    id: lone\n    res: [{res}]\n"
        "compare: {name: g, members: [msa, hilo], reference: msa}\n"
    )
    return p


def _ids(rows: list[dict]) -> list[tuple[str, str, str]]:
    return sorted((r["case_key"], r["case_id"], r.get("group", "")) for r in rows)


def test_ci_smoke_on_the_local_executor_gives_the_plain_runners_cases(
    tmp_path: Path, cli: CliRunner
) -> None:
    common = ["suite", "run", "ci_smoke", "--budget", "0.05", *FAST]
    code, _, err = cli([*common, "--out", str(tmp_path / "plain")])
    assert code == 0, err
    code, _, err = cli([*common, "--executor", "local", "--out", str(tmp_path / "local")])
    assert code == 0, err
    plain, local = load_rows(tmp_path / "plain"), load_rows(tmp_path / "local")
    assert len(local) == len(plain) == 4
    assert _ids(local) == _ids(plain)
    assert all(is_measured(r) and r["interleaved"] for r in local)
    assert json.loads((tmp_path / "local" / "env.json").read_text())["env_id"] == local[0]["env_id"]


def test_a_failed_job_becomes_failure_rows_and_groups_stay_in_one_job(
    tmp_path: Path, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one job holds the group and the lone case; it dies before the lone case, twice
    monkeypatch.setenv("HILOBENCH_TEST_FAULT", "jobexit:lone")
    run = tmp_path / "run"
    code, _, err = cli(["suite", "run", str(_suite(tmp_path)), "--executor", "local",
                        "--units-per-job", "2", "--out", str(run), *FAST])  # fmt: skip
    assert code == EXIT_CASES_FAILED, err  # a run with an error row says so
    rows = {r["case_id"]: r for r in load_rows(run)}
    assert set(rows) == {"msa", "hilo", "lone"}
    assert is_measured(rows["msa"]) and is_measured(rows["hilo"])
    assert rows["msa"]["group_wall_s"] == rows["hilo"]["group_wall_s"]  # timed together
    assert rows["hilo"]["ratio_to_ref"] > 0
    lone = rows["lone"]
    assert lone["status"] == "error" and lone["suite"] == "c"
    assert "failed twice" in lone["message"] and "jobexit" in lone["message"]
    (job,) = json.loads((run / "jobs.json").read_text())["jobs"]
    assert job["state"] == "failed" and len(job["attempts"]) == 2
    in_job = [json.loads(x)["case_id"] for x in (run / "jobs/j000/rows.jsonl").open()]
    assert in_job == ["msa", "hilo"]  # the group's rows came from one job, whole
    assert "failed again" in err and not (run / LOCK_NAME).exists()


def _launch(cmd: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _when_submitted(run: Path, n: int, proc: subprocess.Popen[bytes]) -> None:
    """Wait until the ledger records ``n`` submissions in all (or the launcher ended)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            jobs = json.loads((run / "jobs.json").read_text())["jobs"]
        except (OSError, ValueError, KeyError):
            jobs = []
        if sum(len(j["attempts"]) for j in jobs) >= n:
            return
        time.sleep(0.1)


def test_launcher_stopped_then_killed_then_resumed_loses_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "hilobench", "suite", "run", str(_suite(tmp_path)),
           "--executor", "local", "--units-per-job", "1", "--out", str(run), *FAST]  # fmt: skip
    # SIGTERM while the first job measures: it is stopped, its finished rows stay
    proc = _launch(cmd)
    _when_submitted(run, 1, proc)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) in (0, 143), proc.stderr.read() if proc.stderr else ""
    # SIGKILL of the resumed launcher: its job goes on alone, by process id
    proc = _launch([*cmd, "--resume"])
    _when_submitted(run, 2, proc)
    proc.kill()
    proc.wait(timeout=30)
    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    rows = load_rows(run)
    assert len(rows) == 3 and len({r["case_key"] for r in rows}) == 3
    assert all(is_measured(r) for r in rows)
    ledger = json.loads((run / "jobs.json").read_text())["jobs"]
    assert all(j["state"] == "done" for j in ledger)
    ids = [a["job_id"] for j in ledger for a in j["attempts"]]
    assert not any(_local_alive(i) for i in ids) and not (run / LOCK_NAME).exists()
    assert os.path.getsize(run / "results.csv") > 0


def test_slurm_executor_against_a_fake_slurm(
    tmp_path: Path, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hilobench.cluster.launcher import POLL_S
    from tests.fake_slurm import install

    state = tmp_path / "slurm"
    for k, v in install(tmp_path / "bin", state).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setitem(POLL_S, "slurm", 0.2)
    monkeypatch.setenv("HILOBENCH_TEST_FAULT", "jobexit:lone")
    out = tmp_path / "out"
    code, _, err = cli(["suite", "run", str(_suite(tmp_path)), "--executor", "slurm",
                        "--partition", "p1,p2", "--units-per-job", "1", "--time", "10",
                        "--out", str(out), *FAST])  # fmt: skip
    assert code == EXIT_CASES_FAILED, err
    scripts = [p.read_text() for p in sorted(state.glob("*.sbatch"))]
    assert len(scripts) == 4  # per partition: an array of two jobs, then the lone case again
    for part in ("p1", "p2"):
        rows = {r["case_id"]: r for r in load_rows(out / part)}
        assert is_measured(rows["msa"]) and is_measured(rows["hilo"])
        assert rows["lone"]["status"] == "error" and "FAILED" in rows["lone"]["message"]
        ledger = json.loads((out / part / "jobs.json").read_text())["jobs"]
        assert rows["msa"]["job_id"] == ledger[0]["attempts"][0]["job_id"]
        assert rows["msa"]["job_node"] == "node1" and rows["msa"]["job_cpus"] == 3
        assert rows["lone"]["job_id"] == ledger[1]["attempts"][-1]["job_id"]
        assert sum(f"--partition={part}\n" in s and "--array=0-1%2" in s for s in scripts) == 1
    assert all("#SBATCH --time=10\n" in s and "--nodes=1" in s for s in scripts)
    assert all("#SBATCH --exclusive\n" in s and "cpus-per-task" not in s for s in scripts)


def test_a_job_stopped_from_outside_is_resubmitted_then_left_open_for_resume(
    tmp_path: Path, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hilobench.cluster.launcher import MAX_INTERRUPTS
    from hilobench.core.errors import EXIT_INCOMPLETE

    # the lone case's worker is stopped by SIGTERM in every submission: never an error row
    monkeypatch.setenv("HILOBENCH_TEST_FAULT", "term:lone")
    run = tmp_path / "run"
    args = ["suite", "run", str(_suite(tmp_path)), "--executor", "local",
            "--units-per-job", "1", "--out", str(run), *FAST[1:]]  # fmt: skip
    code, _, err = cli(args)
    assert code == EXIT_INCOMPLETE, err
    rows = {r["case_id"]: r for r in load_rows(run)}
    assert set(rows) == {"msa", "hilo"} and all(is_measured(r) for r in rows.values())
    lone = json.loads((run / "jobs.json").read_text())["jobs"][1]
    assert lone["state"] == "open" and len(lone["attempts"]) == MAX_INTERRUPTS + 1
    assert all(a.get("stopped") for a in lone["attempts"])
    assert "stopped from outside" in err and "left open" in err and "--resume" in err
    monkeypatch.delenv("HILOBENCH_TEST_FAULT")
    code, _, err = cli([*args, "--resume"])
    assert code == 0, err
    rows = {r["case_id"]: r for r in load_rows(run)}
    assert is_measured(rows["lone"]) and len(rows) == 3


def test_job_columns_from_slurm_and_local_environments() -> None:
    from hilobench.cluster.job import job_columns

    slurm = {"SLURM_JOB_ID": "41", "SLURM_ARRAY_JOB_ID": "40", "SLURM_ARRAY_TASK_ID": "1",
             "SLURMD_NODENAME": "gpu7", "SLURM_JOB_CPUS_PER_NODE": "16(x2)"}  # fmt: skip
    assert job_columns(slurm) == {"job_id": "40_1", "job_node": "gpu7", "job_cpus": 16}
    assert job_columns({"SLURM_JOB_ID": "9", "SLURM_CPUS_ON_NODE": "4"})["job_cpus"] == 4
    local = job_columns({"SUBMITIT_LOCAL_JOB_ID": "123"})
    assert local["job_id"] == "123" and local["job_cpus"] == len(os.sched_getaffinity(0))
