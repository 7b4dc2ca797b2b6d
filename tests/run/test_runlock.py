"""A run directory has one writer: a second run into it is refused naming the holder, a lock
left by a run that is gone is taken over, and Ctrl-C / SIGTERM stop a suite run within seconds,
keeping every finished row, so that `--resume` completes it without a duplicate."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hilobench.core.errors import ConfigError
from hilobench.run.lock import LOCK_NAME, RunLock
from hilobench.store.writer import RunDir, load_rows

ROOT = Path(__file__).resolve().parents[2]
N_CASES = 6


def tiny_suite(tmp_path: Path, n: int = N_CASES) -> Path:
    """``n`` tiny MSA cases (one per resolution; the token map stays 7x7)."""
    res = ", ".join(str(112 + 16 * i) for i in range(n))
    path = tmp_path / "tiny.yaml"
    path.write_text(
        "name: tiny\ndefaults:\n  device: cpu\n  batch: 1\n  dim: 32\n  heads: 2\n"
        f"  tokens: 7x7\n  budget: 0.2\ncases:\n  - layer: msa\n    res: [{res}]\n"
    )
    return path


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_holder_is_refused_naming_the_pid(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with RunLock(run_dir) as first:
        assert first.held and json.loads((run_dir / LOCK_NAME).read_text())["pid"] == os.getpid()
        with pytest.raises(ConfigError, match=f"in use by another run \\(pid {os.getpid()}"):
            RunLock(run_dir).acquire()
    assert not (run_dir / LOCK_NAME).exists()
    assert not run_dir.exists()  # made for the lock only, so removed with it
    with RunLock(run_dir):  # free again
        pass


def test_commands_refuse_a_directory_in_use(cli, tmp_path: Path) -> None:
    suite, run_dir = tiny_suite(tmp_path, 1), tmp_path / "run"
    other = subprocess.Popen(  # another process holds the lock
        [sys.executable, "-c", "import sys; from hilobench.run.lock import RunLock; "
         f"RunLock({str(run_dir)!r}).acquire(); print('held', flush=True); sys.stdin.read()"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert other.stdout is not None and other.stdout.readline() == "held\n"
        for args in (
            ["suite", "run", str(suite), "--out", str(run_dir)],
            ["suite", "run", str(suite), "--out", str(run_dir), "--resume"],
            ["layer", "--attn", "msa", "--dim", "32", "--heads", "2", "--batch", "1",
             "--tokens", "7x7", "--budget", "0.2", "--out", str(run_dir)],
        ):  # fmt: skip
            code, _, stderr = cli(args)
            assert code == 2, stderr
            assert f"in use by another run (pid {other.pid}" in stderr
            assert len(stderr.strip().splitlines()) == 1
        assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_NAME]
    finally:
        other.communicate("", timeout=30)
    with RunLock(run_dir) as lock:  # its holder ended without letting go: free now
        assert lock.took_over is not None and lock.took_over["pid"] == other.pid


def test_stale_lock_is_taken_over(cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    pid = dead_pid()
    (run_dir / LOCK_NAME).write_text(json.dumps({"pid": pid, "started": "earlier"}))
    with RunLock(run_dir) as lock:
        assert lock.took_over == {"pid": pid, "started": "earlier"}
    assert not (run_dir / LOCK_NAME).exists() and run_dir.is_dir()

    (run_dir / LOCK_NAME).write_text(json.dumps({"pid": pid}))
    code, _, stderr = cli(["suite", "run", str(tiny_suite(tmp_path, 1)), "--no-isolate",
                           "--out", str(run_dir), "--format", "json"])  # fmt: skip
    assert code == 0, stderr
    assert f"left locked by a run that is gone (pid {pid})" in stderr
    assert len(load_rows(run_dir)) == 1 and not (run_dir / LOCK_NAME).exists()


def test_without_flock_the_pid_decides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_flock(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "no locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / LOCK_NAME).write_text(json.dumps({"pid": os.getppid()}))  # alive
    with pytest.raises(ConfigError, match=f"pid {os.getppid()}"):
        RunLock(run_dir).acquire()
    (run_dir / LOCK_NAME).write_text(json.dumps({"pid": dead_pid()}))
    with RunLock(run_dir) as lock:
        assert lock.took_over is not None


def start_run(suite: Path, run_dir: Path) -> tuple[subprocess.Popen[str], float]:
    """Start `hilobench suite run` and return it once its first row has landed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hilobench", "suite", "run", str(suite), "--out", str(run_dir)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    rows = run_dir / "rows.jsonl"
    deadline = time.monotonic() + 120
    while not (rows.exists() and rows.read_text().count("\n") >= 1):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no row appeared: {proc.communicate()[1][-2000:]}")
        time.sleep(0.1)
    return proc, time.monotonic()


def stop(proc: subprocess.Popen[str], sig: int) -> tuple[int, str, float]:
    proc.send_signal(sig)
    t0 = time.monotonic()
    try:
        _, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, stderr, time.monotonic() - t0


def test_ctrl_c_keeps_rows_and_resume_completes(cli, tmp_path: Path) -> None:
    suite, run_dir = tiny_suite(tmp_path), tmp_path / "run"
    proc, _ = start_run(suite, run_dir)
    code, stderr, took = stop(proc, signal.SIGINT)
    assert code == 130, stderr
    assert took < 10
    kept = load_rows(run_dir)
    assert 1 <= len(kept) < N_CASES
    assert (run_dir / "rows.jsonl").read_text().endswith("\n")  # whole lines only
    assert (run_dir / "results.csv").is_file() and (run_dir / "results.md").is_file()
    assert not (run_dir / LOCK_NAME).exists()
    (last,) = [ln for ln in stderr.splitlines() if ln.startswith("interrupted")]
    assert f"{len(kept)} of {N_CASES} cases measured" in last and "--resume" in last

    code, _, stderr = cli(["suite", "run", str(suite), "--no-isolate", "--resume",
                           "--out", str(run_dir), "--format", "json"])  # fmt: skip
    assert code == 0, stderr
    assert f"{len(kept)} already done" in stderr
    rows = load_rows(run_dir)
    assert len(rows) == N_CASES
    assert len({r["case_key"] for r in rows}) == N_CASES
    assert rows[: len(kept)] == kept


def test_sigterm_stops_the_run_too(tmp_path: Path) -> None:
    suite, run_dir = tiny_suite(tmp_path, 3), tmp_path / "run"
    proc, _ = start_run(suite, run_dir)
    code, stderr, took = stop(proc, signal.SIGTERM)
    assert code == 143, stderr
    assert took < 10 and "interrupted" in stderr
    assert 1 <= len(load_rows(run_dir)) < 3 and not (run_dir / LOCK_NAME).exists()


def test_tables_of_a_run_stopped_before_its_first_row(tmp_path: Path) -> None:
    RunDir(tmp_path).write_tables()  # the interrupt path writes tables for what is there
    assert not (tmp_path / "results.csv").exists()
