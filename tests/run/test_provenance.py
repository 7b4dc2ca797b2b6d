"""Rows say where they came from: the code version, the suite file and whether a worker process
measured them; ``suite run --resume`` refuses rows of another suite or code version unless
``--force-resume``; ``merge`` keeps apart every pair of cases that differ in any Case field."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from hilobench import __version__
from hilobench.core.case import Case
from hilobench.measure.env import code_state, env_id, fingerprint, git_state
from hilobench.report.merge import merge_runs
from hilobench.report.run_rows import load_runs
from hilobench.run.engine import base_row
from hilobench.store.writer import RunDir, load_rows
from tests.conftest import CliRunner

TINY = "  batch: 1\n  dim: 32\n  heads: 2\n  budget: 0.05\n"
OPTS = (("dim", 32), ("heads", 2), ("tokens", "7x7"))


def write_suite(tmp_path: Path, name: str = "t", note: str = "") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\n{note}defaults:\n{TINY}cases:\n  - layer: msa\n")
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def test_layer_rows_carry_the_code_version(tmp_path: Path, cli: CliRunner) -> None:
    out = tmp_path / "run"
    args = ["layer", "--attn", "msa", "--dim", "32", "--heads", "2", "--tokens", "7x7"]
    code, _, err = cli(
        [*args, "--batch", "1", "--budget", "0.05", "--no-roofline", "--out", str(out)]
    )
    assert code == 0, err
    (row,) = load_rows(out)
    commit, dirty = git_state()
    assert row["hilobench_version"] == __version__
    assert row["git_commit"] == commit
    assert row["git_dirty"] in (dirty, False)  # the run directory is never counted as an edit
    assert row["isolated"] is False
    assert "suite_hash" not in row and "suite" not in row


def test_suite_rows_carry_the_suite_identity(tmp_path: Path, cli: CliRunner) -> None:
    suite = write_suite(tmp_path)
    out = tmp_path / "run"
    code, _, err = cli(
        ["suite", "run", str(suite), "--no-isolate", "--no-roofline", "--out", str(out)]
    )
    assert code == 0, err
    (row,) = load_rows(out)
    assert row["suite"] == "t" and row["suite_hash"] == digest(suite)
    assert row["isolated"] is False and row["hilobench_version"] == __version__


def test_isolated_rows_say_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hilobench.run.runner as runner
    from hilobench.core.plan import SuiteCase, plan
    from hilobench.run.worker import run_job

    monkeypatch.setattr(runner, "call_worker", lambda job, timeout: run_job(job))
    run = RunDir(tmp_path / "run").create({})
    case = Case("layer", "msa", batch=1, budget=0.05, options=OPTS)
    r = runner.Runner(run, isolate=True, suite="s", suite_hash="abc", roofline=False)
    (row,) = r.run_units(plan([SuiteCase(case, "msa")]))
    assert row["isolated"] is True and row["suite_hash"] == "abc" and row["suite"] == "s"


def test_git_state_leaves_out_the_run_directory(tmp_path: Path) -> None:
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "init"]):
        subprocess.run(["git", *ident, "-C", str(repo), *args], check=True, capture_output=True)
    (repo / "runs" / "a").mkdir(parents=True)
    (repo / "runs" / "a" / "rows.jsonl").write_text("{}\n")
    commit, dirty = git_state(repo)
    assert commit and dirty is True
    assert git_state(repo, exclude=[repo / "runs" / "a", tmp_path / "elsewhere"]) == (commit, False)


# --- resume -------------------------------------------------------------------------------


def earlier_run(tmp_path: Path, suite_file: Path, **changes: Any) -> Path:
    """A run directory of ``suite_file`` holding one row of another case, made here and now,
    with ``changes`` to its provenance columns."""
    out = tmp_path / "run"
    out.mkdir()
    env = fingerprint("cpu", torch.get_num_threads())
    env["env_id"] = env_id(env)
    row = dict(base_row(Case("layer", "hilo", batch=1, budget=0.05, options=OPTS)), status="ok")
    row.update(code_state(), isolated=False, suite="t", suite_hash=digest(suite_file))
    row.update(case_id="hilo", env_id=env["env_id"], message="", **changes)
    (out / "rows.jsonl").write_text(json.dumps(row) + "\n")
    (out / "env.json").write_text(json.dumps(env))
    return out


def resume(cli: CliRunner, suite: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    args = ["suite", "run", str(suite), "--no-isolate", "--no-roofline", "--out", str(out)]
    return cli([*args, "--resume", *extra])


def other_code() -> dict[str, Any]:
    """Provenance columns of some other code version than this one."""
    now = code_state()
    if now["git_commit"] is None:
        return {"hilobench_version": "0.0.0-other"}
    return {"git_commit": "0" * 40}


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"suite": "another"}, "suite"),
        ({"suite_hash": "0123456789abcdef"}, "suite_hash"),
        (other_code(), next(iter(other_code()))),
    ],
)
def test_resume_refuses_rows_of_another_suite_or_code(
    tmp_path: Path, cli: CliRunner, changes: dict[str, Any], named: str
) -> None:
    suite = write_suite(tmp_path)
    out = earlier_run(tmp_path, suite, **changes)
    code, _, err = resume(cli, suite, out)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert named in err and "--force-resume" in err
    assert len(load_rows(out)) == 1

    code, _, err = resume(cli, suite, out, "--force-resume")
    assert code == 0, err
    rows = load_rows(out)
    assert [r["case_id"] for r in rows] == ["hilo", "msa"]
    assert rows[1]["suite_hash"] == digest(suite)


def test_resume_refuses_another_dirty_state(tmp_path: Path, cli: CliRunner) -> None:
    now = code_state(exclude=[tmp_path / "run"])
    if now["git_commit"] is None:
        pytest.skip("not a git checkout")
    suite = write_suite(tmp_path)
    out = earlier_run(tmp_path, suite, git_dirty=not now["git_dirty"])
    code, _, err = resume(cli, suite, out)
    assert code == 2 and "git_dirty" in err and "--force-resume" in err


def test_resume_after_the_suite_file_changed(tmp_path: Path, cli: CliRunner) -> None:
    suite = write_suite(tmp_path)
    out = earlier_run(tmp_path, suite)
    write_suite(tmp_path, note="description: edited since\n")
    code, _, err = resume(cli, suite, out)
    assert code == 2 and "suite_hash" in err
    code, _, err = cli(["suite", "run", str(suite), "--no-isolate", "--no-roofline", "--out",
                        str(out), "--force-resume"])  # fmt: skip
    assert code == 0, err
    assert len(load_rows(out)) == 2


def test_resume_accepts_rows_of_this_suite_and_code(tmp_path: Path, cli: CliRunner) -> None:
    suite = write_suite(tmp_path)
    out = earlier_run(tmp_path, suite)
    code, _, err = resume(cli, suite, out)
    assert code == 0, err
    assert len(load_rows(out)) == 2


# --- merge --------------------------------------------------------------------------------


def test_merge_keeps_cases_that_differ_only_in_channels_last_apart(tmp_path: Path) -> None:
    runs = []
    for label, speed in (("a", 1.0), ("b", 2.0)):
        run = RunDir(tmp_path / label).create({"env_id": label, "cpu_model": f"CPU {label}"})
        for cl in (False, True):
            case = Case("model", "resnet50", batch=1, channels_last=cl)
            row = dict(base_row(case), env_id=label, status="ok", message="")
            run.append(dict(row, throughput_median=speed + cl))
        runs.append(run.path)
    df = merge_runs(load_runs(runs))
    assert len(df) == 2
    assert sorted(df["channels_last"]) == ["False", "True"]
    assert sorted(df[df.columns[-1]]) == [2.0, 3.0] and sorted(df[df.columns[-2]]) == [1.0, 2.0]
