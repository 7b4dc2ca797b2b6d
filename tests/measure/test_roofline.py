"""Roofline column: the GEMM peak is measured, and a row's fraction is its MAC rate over it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from hilobench.cli.app import main
from hilobench.measure import roofline
from hilobench.measure.roofline import achieved_fraction, peak_macs_per_s
from hilobench.run.engine import add_roofline


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


def test_peak_step_is_bounded_when_the_gemm_is_emulated(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dtype the CPU only emulates (~10 s per 1024³ call) must not stall the peak step."""
    real_mm = torch.mm

    def emulated_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        time.sleep(10.7 * (a.shape[0] / 1024) ** 3)
        return real_mm(a, b)

    monkeypatch.setattr(torch, "mm", emulated_mm)
    t0 = time.perf_counter()
    peak = roofline.measure_peak("cpu", "float32", budget_s=1.0)
    assert time.perf_counter() - t0 < 1.0 + 0.6  # one call of the chosen size past the cap
    assert peak.n <= 256 and peak.macs_per_s > 0


def test_peak_grows_the_gemm_while_calls_are_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a machine doing 10 GMAC/s (a fake clock: a loaded machine's real one would decide
    the sizes), the side doubles until a call nears the target time, within the budget."""

    def fake_calls(fn: Any, sync: Any, k: int) -> float:
        n = next(c.cell_contents for c in fn.__closure__ if hasattr(c.cell_contents, "shape"))
        return k * n.shape[0] ** 3 / 1e10

    monkeypatch.setattr(roofline, "_timed_calls", fake_calls)
    peak = roofline.measure_peak("cpu", "float32", budget_s=1.0)
    assert peak.n >= 512 and peak.seconds < 1.0 + 0.5
    assert peak.macs_per_s > 0  # sampled on the real clock


def test_peak_is_cached_per_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(roofline.CACHE_ENV, str(tmp_path))
    calls: list[str] = []

    def fake_measure(device: str, dtype: str, budget_s: float) -> roofline.Peak:
        calls.append(dtype)
        return roofline.Peak(1e9 if dtype == "float32" else 2e9, 512, 0.1)

    monkeypatch.setattr(roofline, "measure_peak", fake_measure)
    assert peak_macs_per_s("cpu", "float32") == 1e9
    assert peak_macs_per_s("cpu", "float32") == 1e9  # from the cache
    assert peak_macs_per_s("cpu", "bfloat16") == 2e9  # another key
    assert calls == ["float32", "bfloat16"]
    data = json.loads((tmp_path / roofline.CACHE_FILE).read_text())
    assert sorted(k.split("|")[2] for k in data) == ["bfloat16", "float32"]
    original = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # the peak depends on threads: a new key, measured again
        peak_macs_per_s("cpu", "float32")
    finally:
        torch.set_num_threads(original)
    assert calls == ["float32", "bfloat16", "float32"]


def test_corrupt_or_unwritable_cache_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(roofline, "measure_peak", lambda *a: roofline.Peak(3e9, 256, 0.1))
    monkeypatch.setenv(roofline.CACHE_ENV, str(tmp_path))
    (tmp_path / roofline.CACHE_FILE).write_bytes(b"\xff\x00 not json")
    assert peak_macs_per_s("cpu", "float32") == 3e9
    assert json.loads((tmp_path / roofline.CACHE_FILE).read_text())  # rewritten
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(roofline.CACHE_ENV, str(blocker / "sub"))  # cannot be created
    assert peak_macs_per_s("cpu", "float32") == 3e9


def test_no_roofline_skips_the_peak(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r"
    with pytest.raises(SystemExit) as exc:
        main(["layer", "--attn", "msa", "--dim", "32", "--heads", "2", "--tokens", "7x7",
              "--batch", "1", "--budget", "0.1", "--no-roofline", "--out", str(out),
              "--format", "json"])  # fmt: skip
    assert exc.value.code == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert "roofline" not in row
    assert "peak_macs_per_s" not in json.loads((out / "env.json").read_text())
