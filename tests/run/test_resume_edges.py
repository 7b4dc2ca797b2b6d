"""Resuming from the edges: a run killed while writing its first row starts over, and a stop
at any moment after start-up names the command that finishes the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hilobench.cli.app import main
from hilobench.run.lock import LOCK_NAME
from hilobench.store.writer import load_rows

ROOT = Path(__file__).resolve().parents[2]
SUITE = (
    "name: t\ndefaults:\n  device: cpu\n  batch: 1\n  dim: 32\n  heads: 2\n  tokens: 7x7\n"
    "  budget: 0.1\ncases:\n  - layer: [msa, hilo]\n"
)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def test_resume_of_a_run_whose_only_line_is_torn_starts_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = tmp_path / "t.yaml"
    suite.write_text(SUITE)
    out = tmp_path / "run"
    out.mkdir()
    (out / "rows.jsonl").write_text('{"case_key": "abc", "sta')  # killed in its first write
    args = ["suite", "run", str(suite), "--no-isolate", "--no-roofline", "--out", str(out)]
    code, _, stderr = run_cli(args, capsys)
    assert code == 2 and "torn" in stderr  # without --resume: refused in one line
    code, _, stderr = run_cli([*args, "--resume"], capsys)
    assert code == 0, stderr
    assert "removed a torn last line" in stderr and "2 case(s) to run" in stderr
    rows = load_rows(out)
    assert sorted(r["case_id"] for r in rows) == ["hilo", "msa"]


@pytest.mark.timeout(300)
def test_a_stop_in_the_first_moments_prints_the_resume_command(tmp_path: Path) -> None:
    suite = tmp_path / "t.yaml"
    suite.write_text(SUITE)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "hilobench", "suite", "run", str(suite), "--out", str(out)]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (out / LOCK_NAME).exists():  # the lock is taken: start-up is over
            assert proc.poll() is None, "the run ended before it could be stopped"
            assert time.monotonic() < deadline, "the run never took its lock"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode == 0:  # the run finished before the signal landed: nothing to check
        pytest.skip("the run finished before the signal")
    assert proc.returncode == 130, stderr
    assert f"--resume --out {out}" in stderr and "Traceback" not in stderr
    assert not (out / LOCK_NAME).exists()
