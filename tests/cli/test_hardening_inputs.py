"""Bad input ends as one line and exit 2 before anything is built or written; a stopped run
keeps its rows; a stopped gate leaves no worktree or temporary directory behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hilobench.measure import memory
from tests.gitrepo import commit_all, copy_package, git

TINY = ["--dim", "32", "--heads", "2", "--batch", "1", "--no-roofline"]


def refused(cli, args: list[str], out: Path, *expected: str) -> str:
    """Run ``args`` with ``--out out``: exit 2, one stderr line, no traceback, nothing written."""
    code, stdout, err = cli([*args, "--out", str(out)])
    assert code == 2, stdout + err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and not stdout
    assert not out.exists()
    for text in expected:
        assert text in err, err
    return err


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--attn", "hilo", "--window", "1000"], ("window=1000", "14x14", "at most 14")),
        (["--attn", "wmsa", "--window", "1000"], ("window=1000", "14x14")),
        (["--attn", "tmsa", "--tokens", "7", "--window", "8"], ("window=8", "7x7")),
        (["--attn", "sra", "--sr", "1000", "--tokens", "14"], ("sr=1000", "14x14")),
        (["--attn", "gsa", "--sr", "15", "--tokens", "14x9"], ("sr=15", "14x9", "at most 14")),
        (["--attn", "sra", "--sr", "0"], ("--sr",)),
        (["--attn", "sra", "--sr", "-2"], ("--sr",)),
        (["--attn", "msa", "--tokens", "0x5"], ("0x5",)),
        (["--attn", "msa", "--threads", "100000"], ("threads", "between 1 and")),
        (["--attn", "msa", "--threads", "0"], ("threads",)),
        (["--attn", "msa", "--budget", "inf"], ("budget", "3600")),
        (["--attn", "msa", "--budget", "nan"], ("budget",)),
        (["--attn", "msa", "--budget", "0"], ("budget",)),
        (["--attn", "msa", "--budget", "3601"], ("budget", "3600")),
    ],
)
def test_layer_refusals(cli, tmp_path: Path, args: list[str], expected: tuple[str, ...]) -> None:
    refused(cli, ["layer", *args, *TINY], tmp_path / "run", *expected)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["litv2_s", "--res", "1"], ("too small", "29")),
        (["resnet50", "--res", "8"], ("too small", "32")),
        (["pvt_s", "--res", "1"], ("too small", "32")),
        (["litv2_s", "--window", "1000"], ("window=1000", "stage 3")),
        (["litv2_s", "--budget", "inf"], ("budget",)),
        (["litv2_s", "--threads", "100000"], ("threads",)),
        ([",,,"], ("no model given", "',,,'")),
        (["litv2_*,nope_*"], ("'nope_*' matches no model", "litv2_s")),
        (["litv2_ss"], ("did you mean 'litv2_s'",)),
    ],
)
def test_model_refusals(cli, tmp_path: Path, args: list[str], expected: tuple[str, ...]) -> None:
    refused(cli, ["model", *args, "--batch", "1", "--no-roofline"], tmp_path / "run", *expected)


@pytest.mark.parametrize("budget", ["inf", "nan", "0", "3601"])
def test_gate_budget_refused(cli, tmp_path: Path, budget: str) -> None:
    refused(cli, ["gate", "--suite", "ci_smoke", "--budget", budget], tmp_path / "run", "budget")


def test_gate_out_naming_a_file_refused(cli, tmp_path: Path) -> None:
    """``gate --out`` of an existing file, or of a path under one: one line, before measuring."""
    taken = tmp_path / "taken.txt"
    taken.write_text("mine\n")
    for out, needle in ((taken, "is a file"), (taken / "sub", "a file")):
        code, stdout, err = cli(["gate", "--suite", "ci_smoke", "--out", str(out)])
        assert code == 2 and not stdout and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1 and str(out) in err and needle in err, err
    assert taken.read_text() == "mine\n"


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_suite_list_dir_must_be_a_directory(cli, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "nowhere"
    if kind == "file":
        path.write_text("name: x\n")
    code, stdout, err = cli(["suite", "list", "--dir", str(path)])
    assert code == 2 and not stdout and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and str(path) in err and "directory" in err, err


def test_unknown_suite_suggests_the_closest(cli) -> None:
    code, _, err = cli(["suite", "run", "ci_smok"])
    assert code == 2 and "did you mean 'ci_smoke'" in err and len(err.strip().splitlines()) == 1


def test_memory_estimate_refuses_before_allocating(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda device: 10**6)
    # 4 x 2 heads x 4096 x 4096 float32 scores: ~0.5 GB (the reference path holds them)
    err = refused(
        cli,
        ["layer", "--attn", "msa", "--impl", "reference", "--tokens", "64", *TINY, "--batch", "4"],
        tmp_path / "run",
        "GB for the attention matrix",
        "GB available",
    )
    assert "~0.5 GB" in err
    # a window attention on the same map holds far less, but its activations still do not fit
    refused(cli, ["layer", "--attn", "wmsa", "--tokens", "64", *TINY], tmp_path / "r", "GB")


def suite_file(tmp_path: Path, case: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(f"name: t\ncases:\n  - {{{case}, batch: 1, dim: 32, heads: 2}}\n")
    return p


@pytest.mark.parametrize(
    "case, extra, expected",
    [
        ("layer: msa, tokens: '0x5'", [], "0x5"),
        ("layer: hilo, tokens: 7x7, window: 100", [], "window=100"),
        ("layer: sra, tokens: 7x7, sr: 8", [], "sr=8"),
        ("layer: msa, tokens: 7x7, threads: 100000", [], "threads"),
        ("layer: msa, tokens: 7x7, budget: .inf", [], "budget"),
        ("layer: msa, tokens: 7x7", ["--set", "budget=inf"], "budget"),
        ("layer: msa, tokens: 7x7", ["--set", "x=[1"], "'[1' is not a YAML value"),
        ("layer: msa, tokens: 7x7", ["--set", "x: [1"], "expected KEY=VALUE"),
    ],
)
def test_suite_refusals(cli, tmp_path: Path, case: str, extra: list[str], expected: str) -> None:
    suite = suite_file(tmp_path, case)
    refused(cli, ["suite", "run", str(suite), *extra], tmp_path / "run", expected)


def test_duplicates_measured_once_and_out_dir_guarded(cli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["layer", "--attn", "msa,msa", "--tokens", "7", *TINY, "--budget", "0.1"]
    code, stdout, err = cli([*args, "--out", str(out), "--format", "json"])
    assert code == 0, err
    assert len(json.loads(stdout)) == 1
    rows = (out / "rows.jsonl").read_text()
    assert len(rows.splitlines()) == 1

    # rows of another run stay untouched unless --append is asked for
    code, _, err = cli([*args, "--out", str(out)])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--append" in err
    assert (out / "rows.jsonl").read_text() == rows

    # and rows of another machine never mix, --append or not
    env_path = out / "env.json"
    env = json.loads(env_path.read_text())
    env_path.write_text(json.dumps(dict(env, cpu_model="Another CPU 9000")))
    code, _, err = cli([*args, "--out", str(out), "--append"])
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "another machine class" in err and "cpu_model" in err
    assert (out / "rows.jsonl").read_text() == rows

    env_path.write_text(json.dumps(env))
    code, _, err = cli([*args, "--out", str(out), "--append", "--format", "json"])
    assert code == 0, err
    assert len((out / "rows.jsonl").read_text().splitlines()) == 2


def wait_for(predicate, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, "the run ended before it could be stopped"
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.05)


def rows_in(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_sigterm_during_layer_keeps_rows_and_tables(tmp_path: Path) -> None:
    out = tmp_path / "run"
    errf = tmp_path / "stderr.txt"
    cmd = [sys.executable, "-m", "hilobench", "layer", "--attn", "msa,hilo,sra,wmsa",
           "--tokens", "7x7", *TINY, "--budget", "0.5", "--out", str(out)]  # fmt: skip
    with open(errf, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=fh)
        try:
            wait_for(lambda: len(rows_in(out / "rows.jsonl")) >= 1, 120, proc)
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    err = errf.read_text()
    assert rc == 143, err
    rows = rows_in(out / "rows.jsonl")
    assert 1 <= len(rows) < 4
    csv = (out / "results.csv").read_text().splitlines()
    assert len(csv) == 1 + len(rows)
    assert (out / "results.md").exists()
    assert "interrupted" in err and str(out) in err and "Traceback" not in err


TINY_SUITE = """\
name: tiny
defaults: {batch: 1, dim: 32, heads: 2, threads: 1, budget: 3}
cases:
  - layer: [msa, hilo]
    res: 64
"""


def test_sigterm_during_gate_removes_worktree_and_temp_dirs(tmp_path: Path) -> None:
    repo = copy_package(tmp_path / "repo", TINY_SUITE)
    commit_all(repo, "base")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "HILOBENCH_TEST_SLOWDOWN"}
    env["TMPDIR"] = str(tmp)
    errf = tmp_path / "stderr.txt"
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "hilobench", "gate", "--base", "HEAD", "--suite", "tiny.yaml",
           "--out", str(out)]  # fmt: skip
    with open(errf, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=fh)
        try:
            # both sides started and measuring the first case
            wait_for(lambda: "[1/2]" in errf.read_text(), 180, proc)
            assert git(repo, "worktree", "list").count("\n") == 2
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    err = errf.read_text()
    assert rc == 143, err
    assert "interrupted" in err and "Traceback" not in err
    assert git(repo, "worktree", "list").count("\n") == 1
    assert list(tmp.iterdir()) == []
