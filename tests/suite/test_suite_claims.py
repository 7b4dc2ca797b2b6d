"""`suite run` checks the suite's claims on its rows, keeps them beside the rows, and exits 1
when one fails."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

CliRunner = Callable[[list[str]], tuple[int, str, str]]

SUITE = """\
name: claims_check
defaults: {dim: 64, heads: 4, batch: 2, budget: 0.2, count: false}
cases:
  - layer: [hilo, msa]
claims:
  - {name: fewer_macs, a: hilo, b: msa, metric: macs, min_ratio: MIN}
"""


@pytest.mark.parametrize("min_ratio, code, verdict", [(1.1, 0, "pass"), (100, 1, "fail")])
def test_claims_checked_after_a_run(
    min_ratio: float, code: int, verdict: str, tmp_path: Path, cli: CliRunner
) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE.replace("MIN", str(min_ratio)))
    out = tmp_path / "run"
    got, _, stderr = cli(["suite", "run", str(suite), "--no-isolate", "--out", str(out),
                          "--format", "json"])  # fmt: skip
    assert got == code, stderr
    assert json.loads((out / "claims.json").read_text())[0]["name"] == "fewer_macs"
    assert "fewer_macs" in stderr and verdict in stderr
    assert len((out / "rows.jsonl").read_text().splitlines()) == 2
