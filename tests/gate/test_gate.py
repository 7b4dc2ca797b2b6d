"""The two-revision gate: its worker protocol, the committed deterministic baseline, and real
gate runs in a temporary git repository (each side running its own code)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from hilobench.core.case import Case
from hilobench.gate import side_worker as gate_side
from hilobench.gate.baseline import compute_baseline
from hilobench.gate.driver import MIN_BLOCKS
from tests.gitrepo import commit_all, copy_package, git

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "suites" / "ci_smoke.yaml"
BASELINE = ROOT / "results" / "baselines" / "ci_smoke.json"

TINY_SUITE = """\
name: tiny
defaults: {batch: 1, dim: 32, heads: 2, threads: 1, budget: 0.2}
cases:
  - layer: [msa, hilo]
    res: 64
claims:
  - {a: hilo, b: msa, metric: macs, min_ratio: 1.0}
"""


def test_parse_slowdown() -> None:
    assert gate_side.parse_slowdown("hilo=1.10, sra=1.2") == {"hilo": 1.1, "sra": 1.2}
    assert gate_side.parse_slowdown("") == {}
    for bad in ("hilo", "hilo=0.9", "=1.1", "hilo=x"):
        with pytest.raises(ValueError, match="HILOBENCH_TEST_SLOWDOWN"):
            gate_side.parse_slowdown(bad)


def test_slowdown_pads_each_call_in_proportion() -> None:
    """The test-only knob makes every timed call last at least ``factor`` times as long."""
    step = gate_side.slowed(lambda: time.sleep(0.01), 2.0, "cpu")
    start = time.perf_counter()
    for _ in range(3):
        step()
    assert (time.perf_counter() - start) / 3 >= 0.02


def test_worker_protocol_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(gate_side.SLOWDOWN_ENV, "msa=1.5")
    case = Case("layer", "msa", res=64, batch=1, threads=1, options=(("dim", 32), ("heads", 2)))
    job = {
        "kind": "gate",
        "protocol": gate_side.PROTOCOL,
        "cases": [case.to_json(), dict(case.to_json(), name="nope")],
        "count": True,
    }
    turns = [
        {"turn": "count", "case": 0},
        {"turn": "block", "case": 0, "block": 0, "budget_s": 0.05, "cpu": None},
        {"turn": "bogus"},
        {"turn": "count", "case": 1},
        {"turn": "end"},
    ]
    stdin = io.StringIO("".join(json.dumps(t) + "\n" for t in turns))
    stdout = io.StringIO()
    rows = gate_side.run_side(job, stdin, stdout)
    hello, count, block, bogus, bad = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert hello["hello"] == gate_side.HELLO and hello["protocol"] == gate_side.PROTOCOL
    assert Path(hello["package"]) == ROOT / "hilobench"
    assert count["status"] == "ok"
    assert block["samples"] >= 1 and block["test_slowdown"] == 1.5
    assert "error" in bogus
    assert bad.get("config") is True and "nope" in bad["error"]
    row = rows[0]
    assert row["status"] == "ok" and row["params"] > 0 and row["peak_mem_bytes"] > 0
    assert len(row["samples_s"]) == block["samples"] and min(row["samples_s"]) > 0
    assert rows[1]["status"] == "error"


def test_committed_baseline_matches_recomputed_counts() -> None:
    """Params, MACs (analytic and traced) and peak tensor bytes of ci_smoke, exactly."""
    from hilobench.suite.loader import load_suite

    committed = json.loads(BASELINE.read_text())
    fresh = compute_baseline(SUITE)
    keys = {sc.case.key for sc in load_suite(SUITE).cases}
    assert set(committed["cases"]) == keys, "out of date: run `hilobench gate --update-baseline`"
    for key, figures in fresh["cases"].items():
        assert committed["cases"][key] == figures, (
            f"{figures['label']}: committed {committed['cases'][key]} != measured {figures}; "
            "if the change is intended, run `hilobench gate --update-baseline`"
        )


def test_check_baseline_command(cli, tmp_path: Path) -> None:
    data = json.loads(BASELINE.read_text())
    key = next(iter(data["cases"]))
    data["cases"][key]["params"] += 1
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(data))
    code, out, _ = cli(
        ["gate", "--check-baseline", "--suite", str(SUITE), "--baseline", str(wrong)]
    )
    assert code == 1 and "params" in out
    code, _, err = cli(
        ["gate", "--check-baseline", "--suite", str(SUITE), "--baseline", str(tmp_path / "no")]
    )
    assert code == 3 and "does not exist" in err


# --- real gates in a temporary repository ---------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository holding a copy of this hilobench and a tiny suite, committed."""
    root = copy_package(tmp_path / "repo", TINY_SUITE)
    commit_all(root, "base")
    monkeypatch.chdir(root)
    monkeypatch.delenv(gate_side.SLOWDOWN_ENV, raising=False)
    return root


def test_gate_same_code_passes(repo: Path, cli) -> None:
    out = repo / "out"
    md = repo / "pr.md"
    # a huge minimum effect: noise cannot fail this test, only the machinery can
    code, stdout, err = cli(
        ["gate", "--base", "HEAD", "--suite", "tiny.yaml", "--out", str(out),
         "--min-effect", "5", "--budget", "0.5", "--markdown", str(md)]
    )  # fmt: skip
    assert code == 0, stdout + err
    for side in ("base", "candidate"):
        rows = [json.loads(x) for x in (out / side / "rows.jsonl").read_text().splitlines()]
        assert [r["name"] for r in rows] == ["msa", "hilo"]
        assert all(r["status"] == "ok" and r["blocks"] >= MIN_BLOCKS for r in rows)
        assert all(len(r["samples_s"]) == len(r["sample_blocks"]) for r in rows)
        assert (out / side / "env.json").exists()
    assert (out / "report.md").exists() and json.loads((out / "report.json").read_text())
    text = md.read_text()
    assert text.startswith("### hilobench gate: PASS") and "| claim |" in text
    assert git(repo, "worktree", "list").count("\n") == 1  # the base checkout is gone


def test_gate_runs_each_revision_own_code(repo: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """The working tree counts one parameter more and runs msa 3x slower (test knob): the
    base revision's own code does neither, so both a count and a speed regression show."""
    with open(repo / "hilobench" / "run" / "engine.py", "a") as f:
        f.write(
            "\n\n_run_case = run_case\n\n\n"
            "def run_case(*args, **kwargs):\n"
            "    row = _run_case(*args, **kwargs)\n"
            "    row['params'] += 1\n"
            "    return row\n"
        )
    monkeypatch.setenv(gate_side.SLOWDOWN_ENV, "msa=3")
    out = repo / "out"
    code, _, err = cli(
        [
            "gate",
            "--suite",
            "tiny.yaml",
            "--out",
            str(out),
            "--min-effect",
            "0.5",
            "--budget",
            "0.5",
        ]
    )
    assert code == 1, err
    report = json.loads((out / "report.json").read_text())
    by_name = {c["label"].split("/")[0]: c for c in report["cases"]}
    assert all(c["mismatches"][0]["name"] == "params" for c in by_name.values())
    assert all(
        c["mismatches"][0]["cand"] == c["mismatches"][0]["base"] + 1 for c in by_name.values()
    )
    assert by_name["msa"]["speed"]["verdict"] == "regression"
    assert by_name["msa"]["speed"]["change"] > 1.0
    assert by_name["hilo"]["speed"]["verdict"] != "regression"


def test_gate_revision_without_the_worker_exit_3(tmp_path: Path, cli, monkeypatch) -> None:
    root = tmp_path / "old"
    root.mkdir()
    (root / "README").write_text("an old checkout\n")
    commit_all(root, "old")
    copy_package(root, TINY_SUITE)
    monkeypatch.chdir(root)
    code, out, err = cli(["gate", "--base", "HEAD", "--suite", "tiny.yaml"])
    assert code == 3 and out == ""
    assert "too old" in err and "hilobench/gate/side_worker.py" in err
    code, _, err = cli(["gate", "--base", "no-such-rev", "--suite", "tiny.yaml"])
    assert code == 3 and "unknown revision 'no-such-rev'" in err
    assert git(root, "worktree", "list").count("\n") == 1


def test_gate_outside_a_repository_exit_3(tmp_path: Path, cli, monkeypatch) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY_SUITE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    code, _, err = cli(["gate", "--suite", "tiny.yaml"])
    assert code == 3 and "not inside a git checkout" in err


def test_gate_usage_errors_exit_2(cli) -> None:
    code, _, err = cli(["gate", "--suite", "no_such_suite"])
    assert code == 2 and "no_such_suite" in err
    code, _, err = cli(["gate", "--suite", str(SUITE), "--budget", "0"])
    assert code == 2 and "budget" in err
