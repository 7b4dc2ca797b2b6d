"""Job directories left in the temp dir by a run killed with SIGKILL are removed at the next
start; those of a live run (this one, another one, one whose pid cannot be told) are not."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hilobench.run import jobdir, runner

ROOT = Path(__file__).resolve().parents[2]

#: a "run" that makes its job directory and is killed with SIGKILL while holding it
KILLED_RUN = """
import os, signal, sys, tempfile
tempfile.tempdir = sys.argv[1]
from hilobench.run.jobdir import job_dir
with job_dir() as d:
    open(os.path.join(d, "job.json"), "w").write("{}")
    print(d, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_run_dir(tmp: Path) -> Path:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-c", KILLED_RUN, str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == -9, proc.stderr
    left = Path(proc.stdout.strip())
    assert left.is_dir() and left.parent == tmp and (left / "job.json").is_file()
    return left


def test_sweep_removes_only_the_dirs_of_runs_that_are_gone(tmp_path: Path) -> None:
    killed = killed_run_dir(tmp_path)
    mine = tmp_path / f"{jobdir.PREFIX}{os.getpid()}-abc123"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.2)
        other_live = tmp_path / f"{jobdir.PREFIX}{live.pid}-live_1"
        # the same live pid on a directory written long before that process started: reused
        reused = tmp_path / f"{jobdir.PREFIX}{live.pid}-old_1"
        old_style = tmp_path / f"{jobdir.PREFIX}k3j_9x2q"  # no pid in the name: not ours to judge
        a_file = tmp_path / f"{jobdir.PREFIX}999999999-file"
        for d in (mine, other_live, reused, old_style):
            d.mkdir()
            (d / "job.json").write_text("{}")
        a_file.write_text("x")
        hour_ago = time.time() - 3600
        os.utime(reused, (hour_ago, hour_ago))
        removed = jobdir.sweep_job_dirs(tmp_path)
    finally:
        live.kill()
        live.wait()
    assert sorted(removed) == sorted([killed, reused])
    assert not killed.exists() and not reused.exists()
    for kept in (mine, other_live, old_style, a_file):
        assert kept.exists(), kept


def test_the_first_worker_of_a_run_sweeps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """call_worker sweeps once per process before it makes its own job directory."""
    killed = killed_run_dir(tmp_path)
    monkeypatch.setattr(jobdir.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(jobdir, "_swept", False)
    made: list[Path] = []
    real_popen = subprocess.Popen

    def no_worker(cmd: list[str], **kw: Any) -> Any:
        if "hilobench.run.worker" not in cmd:
            return real_popen(cmd, **kw)
        made.append(Path(cmd[-1]).parent)
        raise OSError("no worker in this test")

    monkeypatch.setattr(runner.subprocess, "Popen", no_worker)
    with pytest.raises(OSError, match="no worker"):
        runner.call_worker({"kind": "case"}, timeout=5)
    assert not killed.exists()
    assert made[0].name.startswith(f"{jobdir.PREFIX}{os.getpid()}-") and not made[0].exists()
    killed = killed_run_dir(tmp_path)
    with pytest.raises(OSError, match="no worker"):  # once per process: not again
        runner.call_worker({"kind": "case"}, timeout=5)
    assert killed.exists()
