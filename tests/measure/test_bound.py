"""The bound diagnosis: its classification and shares (pure), the traced bytes, the busy share
from the profiler, the bandwidth peak and its cache, and the columns a CPU row carries."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from hilobench.core.case import Case
from hilobench.core.row import is_measured
from hilobench.measure import bandwidth, bound
from hilobench.run import engine as bench


@pytest.mark.parametrize(
    ("busy", "compute", "memory", "want"),
    [
        (0.3, 0.9, 0.9, "launch/overhead"),  # idle half the time: the kernels do not matter
        (0.49, None, None, "launch/overhead"),
        (0.9, 0.6, 0.2, "compute"),
        (0.9, 0.1, 0.7, "memory"),
        (0.9, None, 0.05, "memory"),
        (0.9, None, None, None),  # nothing to judge the kernels by
        (None, 0.5, 0.5, None),
    ],
)
def test_classify(
    busy: float | None, compute: float | None, memory: float | None, want: str | None
) -> None:
    assert bound.classify(busy, compute, memory) == want


def test_shares_and_columns() -> None:
    c, m = bound.shares(
        calls_per_s=10.0,
        macs_per_call=1e9,
        bytes_per_call=2e8,
        peak_macs_per_s=4e10,
        peak_bytes_per_s=1e10,
    )
    assert c == pytest.approx(0.25) and m == pytest.approx(0.2)
    # 40 img/s at batch 4, 2 layers per call (throughput is per layer): 5 calls/s
    row = {"throughput_median": 40.0, "batch": 4, "layers_per_call": 2, "macs": 1e8,
           "traced_bytes": 4e9, "bound_busy": 0.8}  # fmt: skip
    cols = bound.bound_columns(row, peak_macs_per_s=8e9, peak_bytes_per_s=1e11)
    assert cols["bound_compute"] == pytest.approx(1e8 * 4 * 2 * 5 / 8e9)  # 0.5
    assert cols["bound_memory"] == pytest.approx(4e9 * 5 / 1e11)  # 0.2
    assert cols["bound"] == "compute"
    train = bound.bound_columns(row, 8e9, 1e11, macs_factor=3.0)
    assert train["bound_compute"] == pytest.approx(1.5)
    assert bound.bound_columns({**row, "bound_busy": None}, 8e9, 1e11) == {}


def test_traced_bytes_counts_operands_and_skips_views() -> None:
    a, b = torch.ones(1000), torch.ones(1000)
    assert bound.traced_bytes(lambda: a + b) == 3 * 4000  # two reads, one write
    assert bound.traced_bytes(lambda: a.view(10, 100).t()) == 0
    x = torch.ones(64, 32)
    w = torch.ones(16, 32)
    got = bound.traced_bytes(lambda: torch.nn.functional.linear(x, w))
    assert got >= (64 * 32 + 16 * 32 + 64 * 16) * 4


def test_busy_share_tells_idle_from_busy() -> None:
    x = torch.ones(4, 4)

    def idle() -> None:
        time.sleep(0.05)
        x.add(1)

    a = torch.randn(384, 384)

    def busy() -> None:
        for _ in range(8):
            a @ a

    assert bound.busy_share(idle, "cpu")[0] < bound.BUSY_MIN
    assert bound.busy_share(busy, "cpu")[0] > bound.BUSY_MIN


def test_the_diagnosis_fits_the_budget_or_is_skipped() -> None:
    assert bound.reserve_s(0.1, 10.0) == pytest.approx(0.1 * bound.TRACE_COST_CALLS)
    assert bound.reserve_s(1.0, 4.0) is None  # 2.5 s > half of 4 s
    assert bound.reserve_s(bound.MAX_STEP_S + 1, 1e6) is None  # slow steps never
    assert "not traced: a step takes" in bound.skipped(bound.MAX_STEP_S + 1, 1e6)["bound_note"]
    assert "of budget left" in bound.skipped(1.0, 4.0)["bound_note"]


def test_a_short_budget_skips_the_diagnosis_and_says_so(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(bound, "MAX_BUDGET_SHARE", 0.0)  # nothing fits
    case = Case(kind="layer", name="msa", batch=1, budget=0.3, options=(("tokens", "4x4"),))
    row = bench.run_case(case, count=False, peak_macs_per_s=1e10)
    assert is_measured(row) and "not traced" in row["bound_note"]
    assert "bound_busy" not in row and row.get("bound") is None


def test_bandwidth_peak_is_measured_and_cached(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HILOBENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(bandwidth, "MIN_BYTES", 2**20)
    monkeypatch.setattr(bandwidth, "BW_BUDGET_S", 0.2)
    first = bandwidth.bandwidth_peak("cpu")
    assert 0 < first < float("inf")  # a rate, whatever the machine's load
    cache = (tmp_path / "roofline.json").read_text()
    assert "bandwidth|cpu|" in cache
    monkeypatch.setattr(bandwidth, "measure_bandwidth", lambda *a, **k: pytest.fail("cached"))
    assert bandwidth.bandwidth_peak("cpu") == first


def test_cpu_rows_carry_the_bound(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # whether the two calls fit the budget depends on the machine's load (tested above)
    monkeypatch.setattr(bench, "reserve_s", lambda call_s, left_s: 0.0)
    opts = (("dim", 32), ("heads", 2), ("tokens", "8x8"))  # small: its calls fit any budget
    case = Case(kind="layer", name="msa", batch=2, budget=2.0, options=opts)
    row = bench.run_case(case, count=False, peak_macs_per_s=1e10)
    assert is_measured(row)
    assert row.get("bound") in bound.BOUNDS, row.get("bound_note")
    assert 0.0 < row["bound_busy"] <= 1.0
    assert row["traced_bytes"] > 2 * 2 * 64 * 32 * 4  # at least the input and the output
    assert row["bound_compute"] is not None and row["bound_compute"] > 0
    assert row["bound_memory"] is not None and row["bound_memory"] > 0
    assert row["peak_bytes_per_s"]
    no_peak = bench.run_case(case, count=False)  # --no-roofline: busy share only
    assert no_peak["bound_busy"] > 0 and no_peak.get("bound_compute") is None
