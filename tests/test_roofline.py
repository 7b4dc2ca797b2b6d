"""Roofline column: the GEMM peak is measured, and a row's fraction is its MAC rate over it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hilobench.bench import add_roofline
from hilobench.cli import main
from hilobench.measure.roofline import achieved_fraction, peak_macs_per_s


def test_peak_is_a_positive_rate() -> None:
    peak = peak_macs_per_s("cpu", "float32", budget_s=0.3)
    assert 1e6 < peak < 1e15


def test_fraction_arithmetic() -> None:
    assert achieved_fraction(1_000, 50.0, 100_000.0) == pytest.approx(0.5)
    assert achieved_fraction(None, 50.0, 1.0) is None
    assert achieved_fraction(10, None, 1.0) is None


def test_only_ok_inference_rows_get_a_roofline() -> None:
    ok = {"mode": "infer", "status": "ok", "macs": 2_000, "throughput_median": 10.0}
    add_roofline(ok, 40_000.0)
    assert ok["achieved_macs_per_s"] == 20_000 and ok["roofline"] == pytest.approx(0.5)
    for row in (
        {"mode": "train", "status": "ok", "macs": 2_000, "throughput_median": 10.0},
        {"mode": "infer", "status": "OOM", "macs": 2_000, "throughput_median": None},
    ):
        add_roofline(row, 40_000.0)
        assert "roofline" not in row


def test_layer_rows_and_env_carry_the_peak(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r"
    with pytest.raises(SystemExit) as exc:
        main(["layer", "--attn", "msa", "--dim", "64", "--heads", "4", "--batch", "2",
              "--budget", "0.2", "--out", str(out), "--format", "json"])  # fmt: skip
    assert exc.value.code == 0
    (row,) = json.loads(capsys.readouterr().out)
    peak = json.loads((out / "env.json").read_text())["peak_macs_per_s"]["cpu/float32"]
    assert row["roofline"] == pytest.approx(row["macs"] * row["throughput_median"] / peak)
    assert row["roofline"] > 0


def test_traced_count_stands_in_when_there_is_no_formula() -> None:
    row = {"mode": "infer", "status": "ok", "macs": None, "macs_traced": 3_000,
           "throughput_median": 10.0}  # fmt: skip
    add_roofline(row, 60_000.0)
    assert row["roofline"] == pytest.approx(0.5)
