"""The suite runner: rows land on disk one by one, failures become rows, a killed run resumes
without repeating a case, and compare groups carry per-round ratios."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hilobench.cli.app import main
from hilobench.core.errors import EXIT_CASES_FAILED
from hilobench.core.row import is_measured
from hilobench.run.testhooks import FAULT_ENV
from hilobench.store.writer import load_rows

ROOT = Path(__file__).resolve().parents[2]
TINY = "  batch: 2\n  dim: 64\n  heads: 4\n  budget: 0.2\n"


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def write_suite(tmp_path: Path, body: str, name: str = "t") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\ndefaults:\n{TINY}{body}")
    return path


def test_compare_group_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = write_suite(
        tmp_path,
        "cases:\n  - layer: [hilo, msa, sra]\n  - layer: wmsa\n"
        "compare: {name: trio, members: [hilo, msa, sra], reference: msa}\n",
    )
    out = tmp_path / "run"
    code, stdout, _ = run_cli(
        ["suite", "run", str(suite), "--no-isolate", "--out", str(out), "--format", "json"],
        capsys,
    )
    assert code == 0
    rows = json.loads(stdout)
    assert [r["case_id"] for r in rows] == ["hilo", "msa", "sra", "wmsa"]
    assert all(is_measured(r) and r["suite"] == "t" for r in rows)
    grouped = {r["case_id"]: r for r in rows if r.get("group") == "trio"}
    assert set(grouped) == {"hilo", "msa", "sra"}
    (rounds,) = {len(r["samples_s"]) for r in grouped.values()}  # same rounds for all
    for r in grouped.values():
        assert r["interleaved"] and r["ref"] == "msa" and r["ratio_n"] == rounds
        assert r["ratio_ci_low"] <= r["ratio_to_ref"] <= r["ratio_ci_high"]
        assert r["peak_mem_bytes"] > 0 and r["macs"] == r["macs_traced"]
    assert grouped["msa"]["ratio_to_ref"] == 1.0
    assert "group" not in rows[3]
    assert len(load_rows(out)) == 4
    for name in ("rows.jsonl", "env.json", "results.csv", "results.md", "suite.yaml"):
        assert (out / name).is_file()

    code, stdout, _ = run_cli(["show", str(out), "--format", "csv"], capsys)
    assert code == 0 and stdout.startswith("kind,name,attention")
    code, stdout, _ = run_cli(["show", str(out), "--format", "json"], capsys)
    assert [r["name"] for r in json.loads(stdout)] == ["hilo", "msa", "sra", "wmsa"]
    code, stdout, _ = run_cli(["show", str(out)], capsys)
    assert code == 0 and "wmsa" in stdout and "compare groups" in stdout
    code, _, stderr = run_cli(["show", str(tmp_path / "nope")], capsys)
    assert code == 2 and "no results" in stderr


def test_injected_oom_and_error_rows_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = write_suite(
        tmp_path,
        "cases:\n  - layer: [hilo, msa, sra, wmsa]\n"
        "compare: {name: g, members: [hilo, msa, sra], reference: msa}\n",
    )
    monkeypatch.setenv(FAULT_ENV, "oom:msa,error:wmsa")
    out = tmp_path / "run"
    code, _, stderr = run_cli(
        ["suite", "run", str(suite), "--no-isolate", "--out", str(out)], capsys
    )
    assert code == EXIT_CASES_FAILED  # the error row; an OOM row alone is a result
    rows = {r["case_id"]: r for r in load_rows(out)}
    assert rows["msa"]["status"] == "OOM" and "injected" in rows["msa"]["message"]
    assert rows["wmsa"]["status"] == "error"
    # the group goes on without its failed reference: timed, but no ratios
    assert is_measured(rows["hilo"]) and is_measured(rows["sra"])
    assert rows["hilo"]["throughput_median"] > 0 and rows["hilo"].get("ratio_to_ref") is None
    assert "2 of 4 cases failed" in stderr


def test_worker_crash_and_timeout_become_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = write_suite(
        tmp_path,
        "cases:\n  - layer: [hilo, sra]\n  - layer: msa\n    timeout: 4\n",
    )
    monkeypatch.setenv(FAULT_ENV, "exit:sra,hang:msa")
    out = tmp_path / "run"
    code, _, _ = run_cli(["suite", "run", str(suite), "--isolate", "--out", str(out)], capsys)
    assert code == EXIT_CASES_FAILED
    rows = {r["case_id"]: r for r in load_rows(out)}
    assert is_measured(rows["hilo"]) and rows["hilo"]["throughput_median"] > 0
    assert rows["sra"]["status"] == "error" and "exited with code 70" in rows["sra"]["message"]
    assert rows["msa"]["status"] == "error" and "timed out after 4 s" in rows["msa"]["message"]


def test_only_oom_rows_end_a_run_with_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = write_suite(tmp_path, "cases:\n  - layer: [hilo, msa]\n")
    monkeypatch.setenv(FAULT_ENV, "oom:msa")
    out = tmp_path / "run"
    code, _, stderr = run_cli(
        ["suite", "run", str(suite), "--no-isolate", "--out", str(out)], capsys
    )
    assert code == 0, stderr
    rows = {r["name"]: r for r in load_rows(out)}
    assert rows["msa"]["status"] == "OOM" and is_measured(rows["hilo"])


def test_worker_stopped_from_outside_leaves_its_case_open(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker ended by SIGTERM that the run did not send (a `kill`, a scheduler) is an
    interruption: no error row that --resume would skip, exit 143 and the resume command."""
    suite = write_suite(tmp_path, "cases:\n  - layer: [hilo, msa, sra]\n")
    monkeypatch.setenv(FAULT_ENV, "term:msa")
    out = tmp_path / "run"
    code, _, stderr = run_cli(["suite", "run", str(suite), "--out", str(out)], capsys)
    assert code == 143, stderr
    assert [r["case_id"] for r in load_rows(out)] == ["hilo"]
    assert "finish with" in stderr and "--resume" in stderr
    monkeypatch.delenv(FAULT_ENV)
    code, _, stderr = run_cli(["suite", "run", str(suite), "--resume", "--out", str(out)], capsys)
    assert code == 0, stderr
    rows = load_rows(out)
    assert [r["case_id"] for r in rows] == ["hilo", "msa", "sra"]
    assert all(is_measured(r) for r in rows)


def test_killed_run_keeps_rows_and_resume_finishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = write_suite(tmp_path, "cases:\n  - layer: [hilo, msa, sra]\n")
    out = tmp_path / "run"
    env = dict(os.environ, **{FAULT_ENV: "hang:msa"})  # case 2 never finishes
    proc = subprocess.Popen(
        [sys.executable, "-m", "hilobench", "suite", "run", str(suite), "--out", str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows_path = out / "rows.jsonl"
    try:
        deadline = time.monotonic() + 120
        while not (rows_path.exists() and rows_path.read_text().count("\n") >= 1):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no row appeared"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    first = load_rows(out)
    assert [r["case_id"] for r in first] == ["hilo"]
    with open(rows_path, "a") as f:  # a row torn by the kill must not corrupt the next one
        f.write('{"case_key": "torn')

    code, _, stderr = run_cli(
        ["suite", "run", str(suite), "--no-isolate", "--out", str(out)], capsys
    )
    assert code == 2 and "--resume" in stderr
    code, _, stderr = run_cli(
        ["suite", "run", str(suite), "--no-isolate", "--resume", "--out", str(out)], capsys
    )
    assert code == 0 and "1 already done" in stderr
    rows = load_rows(out)
    assert [r["case_id"] for r in rows] == ["hilo", "msa", "sra"]
    assert rows[0] == first[0]
    assert len({r["case_key"] for r in rows}) == 3
    code, _, stderr = run_cli(
        ["suite", "run", str(suite), "--no-isolate", "--resume", "--out", str(out)], capsys
    )
    assert code == 0 and "0 case(s) to run, 3 already done" in stderr
    assert len(load_rows(out)) == 3


def test_resume_refuses_another_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = write_suite(tmp_path, "cases:\n  - layer: msa\n")
    out = tmp_path / "run"
    out.mkdir()
    (out / "rows.jsonl").write_text('{"case_key": "x", "status": "ok"}\n')
    (out / "env.json").write_text(json.dumps({"env_id": "elsewhere", "cpu_model": "Other"}))
    code, _, stderr = run_cli(
        ["suite", "run", str(suite), "--no-isolate", "--resume", "--out", str(out)], capsys
    )
    assert code == 2 and "another machine class" in stderr and "Other" in stderr
    assert len(load_rows(out)) == 1


def test_resume_on_the_same_machine_class_despite_ram_and_kernel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hilobench.measure.env import fingerprint

    suite = write_suite(tmp_path, "cases:\n  - layer: msa\n    budget: 0.05\n")
    out = tmp_path / "run"
    out.mkdir()
    (out / "rows.jsonl").write_text('{"case_key": "x", "status": "ok"}\n')
    env = fingerprint("cpu", torch.get_num_threads())
    env.update(env_id="old", ram_total_bytes=int(env.get("ram_total_bytes") or 0) - 438_000)
    env["os"] = str(env.get("os")) + "-another-kernel-build"
    (out / "env.json").write_text(json.dumps(env))
    code, _, stderr = run_cli(
        ["suite", "run", str(suite), "--no-isolate", "--resume", "--out", str(out),
         "--no-roofline"], capsys
    )  # fmt: skip
    assert code == 0, stderr
    assert len(load_rows(out)) == 2
