"""Energy per image: RAPL through a fake powercap tree (wraparound included), NVML through a
fake module, and empty columns, never errors, where there is no counter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hilobench.core.case import Case
from hilobench.core.row import is_measured
from hilobench.measure import energy
from hilobench.run import engine as bench


def _domain(root: Path, name: str, uj: int, wrap: int | None = 10**9) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "energy_uj").write_text(f"{uj}\n")
    if wrap is not None:
        (d / "max_energy_range_uj").write_text(f"{wrap}\n")
    return d


def test_delta_handles_wraparound() -> None:
    assert energy.delta(5.0, 7.5, 10.0) == 2.5
    assert energy.delta(9.0, 1.0, 10.0) == 2.0  # wrapped once
    with pytest.raises(ValueError):
        energy.delta(9.0, 1.0, None)


def test_rapl_sums_packages_not_subdomains(tmp_path: Path) -> None:
    _domain(tmp_path, "intel-rapl:0", 1_000_000)
    _domain(tmp_path, "intel-rapl:1", 2_000_000)
    _domain(tmp_path, "intel-rapl:0:0", 500_000)  # a core sub-domain: inside package 0
    c = energy.rapl_counter(tmp_path)
    assert c is not None and c.name == "rapl"
    assert c.read() == [1.0, 2.0] and c.ranges == [1000.0, 1000.0]


def test_meter_joules_per_image_across_a_wrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = _domain(tmp_path, "intel-rapl:0", 999_000_000)  # 999 J of a 1000 J range
    monkeypatch.setattr(energy, "MIN_SPAN_S", 0.0)
    meter = energy.Meter(energy.rapl_counter(tmp_path))
    (d / "energy_uj").write_text("9000000\n")  # wrapped: 1 J + 9 J = 10 J
    cols = meter.columns(images=20)
    assert cols["energy_j_per_image"] == pytest.approx(0.5)
    assert cols["energy_counter"] == "rapl"


@pytest.mark.parametrize("case", ["missing", "unreadable", "garbage", "still"])
def test_absent_or_useless_counters_give_empty_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    monkeypatch.setattr(energy, "MIN_SPAN_S", 0.0)
    if case != "missing":
        d = _domain(tmp_path, "intel-rapl:0", 1_000_000)
        if case == "unreadable":
            (d / "energy_uj").unlink()
            (d / "energy_uj").mkdir()  # reading it fails as a root-only file would
        if case == "garbage":
            (d / "energy_uj").write_text("n/a\n")
    meter = energy.Meter(energy.rapl_counter(tmp_path))
    cols = meter.columns(images=10)
    assert cols["energy_j_per_image"] is None  # a counter that did not advance says nothing


def test_short_loops_are_not_judged(tmp_path: Path) -> None:
    d = _domain(tmp_path, "intel-rapl:0", 1_000_000)
    meter = energy.Meter(energy.rapl_counter(tmp_path))
    (d / "energy_uj").write_text("2000000\n")
    assert meter.columns(images=1)["energy_j_per_image"] is None  # < MIN_SPAN_S


class _FakeNvml:
    def __init__(self, fail: bool = False) -> None:
        self.mj = 5000
        self.fail = fail

    def nvmlInit(self) -> None:
        if self.fail:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlDeviceGetHandleByIndex(self, i: int) -> str:
        return f"gpu{i}"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:
        return self.mj


def test_nvml_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(energy, "MIN_SPAN_S", 0.0)
    nvml = _FakeNvml()
    c = energy.find_counter("cuda:1", nvml=nvml)
    assert c is not None and c.name == "nvml" and c.read() == [5.0]
    meter = energy.Meter(c)
    nvml.mj += 64_000  # 64 J
    assert meter.columns(images=128)["energy_j_per_image"] == pytest.approx(0.5)
    assert energy.find_counter("cuda:0", nvml=_FakeNvml(fail=True)) is None


def test_cpu_row_has_the_columns_even_without_a_counter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This machine's counter may or may not be readable: with none the column is empty."""
    monkeypatch.setattr(energy, "POWERCAP", tmp_path / "none")
    monkeypatch.setattr(energy.find_counter, "__defaults__", (tmp_path / "none", None))
    case = Case(kind="layer", name="msa", batch=1, budget=0.3, options=(("tokens", "4x4"),))
    row = bench.run_case(case, count=False)
    assert is_measured(row)
    assert row["energy_j_per_image"] is None and row["energy_counter"] == ""
    # and with a counter that advances, the row gets joules per image
    d = _domain(tmp_path, "intel-rapl:0", 0)
    monkeypatch.setattr(energy.find_counter, "__defaults__", (tmp_path, None))
    monkeypatch.setattr(energy, "MIN_SPAN_S", 0.0)
    real_read = energy.Meter._read
    reads: list[int] = []

    def advancing(self: energy.Meter) -> Any:
        reads.append(1)
        (d / "energy_uj").write_text(f"{len(reads) * 3_000_000}\n")
        return real_read(self)

    monkeypatch.setattr(energy.Meter, "_read", advancing)
    row = bench.run_case(case, count=False)
    calls = row["warmup_calls"] + row["n_samples"] * row["calls_per_sample"]
    assert row["energy_j_per_image"] == pytest.approx(3.0 / calls)
    assert row["energy_counter"] == "rapl"


def test_driver_nvml_reports_errors_and_absence(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without nvidia-ml-py the driver's library is used through ctypes; its error codes end
    in no counter, and a machine without the library has none."""

    class Lib:
        def nvmlInit_v2(self) -> int:
            return 0

        def nvmlDeviceGetHandleByIndex_v2(self, index: int, out: Any) -> int:
            return 0

        def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any, out: Any) -> int:
            return 3  # NVML_ERROR_NOT_SUPPORTED

    assert energy.nvml_counter(0, energy._DriverNvml(Lib())) is None
    monkeypatch.setitem(__import__("sys").modules, "pynvml", None)  # not installed
    monkeypatch.setattr(energy._DriverNvml, "load", classmethod(lambda cls: None))
    assert energy.find_counter("cuda:0") is None
