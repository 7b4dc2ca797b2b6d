"""The shipped CI smoke suite runs end to end, isolated, as a user would run it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from hilobench.core.row import is_measured
from hilobench.gate.claims import check_claims

CliRunner = Callable[[list[str]], tuple[int, str, str]]


def test_ci_smoke_suite_runs(tmp_path: Path, cli: CliRunner) -> None:
    out = tmp_path / "smoke"
    code, stdout, stderr = cli(["suite", "run", "ci_smoke", "--out", str(out), "--format", "json"])
    assert code == 0, stderr
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert sorted(r["name"] for r in rows) == ["hilo", "msa", "sra", "wmsa"]
    for r in rows:
        assert is_measured(r), r
        assert r["macs"] == r["macs_traced"]
        assert r["interleaved"] is True and r["ref"] == "msa"
        # the budget is a cap: a loaded machine gets fewer rounds, and then the row says so
        assert r["n_samples"] >= 6 or (r["n_samples"] >= 1 and r["status"] == "few-samples")
    assert len(json.loads(stdout)) == 4
    claims = json.loads((out / "claims.json").read_text())
    assert [c.status for c in check_claims(rows, claims)] == ["pass"]
    for name in ("results.csv", "results.md", "env.json", "claims.json"):
        assert (out / name).is_file()
