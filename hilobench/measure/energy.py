"""Joules per image from the device's energy counter, where the machine exposes one.

* CUDA: NVML's total energy since the driver loaded (``nvmlDeviceGetTotalEnergyConsumption``,
  millijoules, Volta and newer), through ``pynvml`` (the ``nvidia-ml-py`` package) where it
  is installed, else the driver's ``libnvidia-ml.so.1`` through ctypes;
* CPU: Intel / AMD RAPL through Linux powercap, ``/sys/class/powercap/intel-rapl:N/energy_uj``
  per package (microjoules), which wraps at ``max_energy_range_uj``. Most kernels let only
  root read it; then there is no counter.

No counter, an unreadable one or a reading that did not advance gives empty columns, never an
error. The counter is read before and after the timing loop (warm-up and samples): joules ÷
the images processed in it. A package counter measures the whole socket (other processes'
work included) and NVML the whole card; both include idle power between samples. Readers
are injectable (``root``, ``nvml``) so tests run on a fake sysfs tree or a fake NVML.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Counter", "rapl_counter", "nvml_counter", "find_counter", "Meter", "delta"]

POWERCAP = Path("/sys/class/powercap")
#: A loop shorter than this is not judged: NVML and RAPL update every few to ~100 ms.
MIN_SPAN_S = 0.5


@dataclass(frozen=True)
class Counter:
    """A cumulative energy counter: ``read()`` gives joules per domain; each domain wraps at
    its ``ranges`` entry (None: never wraps)."""

    name: str
    read: Callable[[], list[float]]
    ranges: list[float | None]


def delta(before: float, after: float, wrap: float | None) -> float:
    """Joules between two readings of one domain; a counter that went back wrapped once."""
    if after >= before:
        return after - before
    if wrap is None:
        raise ValueError("counter went back and does not wrap")
    return after + wrap - before


def _read_uj(path: Path) -> float:
    return int(path.read_text().strip()) * 1e-6


def rapl_counter(root: Path = POWERCAP) -> Counter | None:
    """The RAPL package domains under ``root`` (``intel-rapl:N``, not their ``:N:M``
    sub-domains, which the package already includes), if every one is readable."""
    try:
        domains = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
        if not domains:
            return None
        ranges: list[float | None] = []
        for d in domains:
            _read_uj(d / "energy_uj")  # readable now, or no counter
            rng = d / "max_energy_range_uj"
            ranges.append(_read_uj(rng) if rng.exists() else None)
    except (OSError, ValueError):
        return None
    return Counter("rapl", lambda: [_read_uj(d / "energy_uj") for d in domains], ranges)


def nvml_counter(index: int, nvml: Any = None) -> Counter | None:
    """The card's NVML total-energy counter (millijoules, 64 bits: never wraps in practice)."""
    if nvml is None:
        try:
            nvml = importlib.import_module("pynvml")  # optional: the nvidia-ml-py package
        except ImportError:
            nvml = _DriverNvml.load()  # else the driver's own library, through ctypes
        if nvml is None:
            return None
    try:
        nvml.nvmlInit()
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except Exception:  # no driver, a card without the counter: no energy column
        return None
    return Counter(
        "nvml", lambda: [nvml.nvmlDeviceGetTotalEnergyConsumption(handle) * 1e-3], [None]
    )


class _DriverNvml:
    """The three NVML calls the counter needs, straight from the driver's ``libnvidia-ml``
    (a GPU machine has the driver even where ``nvidia-ml-py`` is not installed)."""

    def __init__(self, lib: Any) -> None:
        self.lib = lib

    @classmethod
    def load(cls) -> _DriverNvml | None:
        import ctypes

        try:
            return cls(ctypes.CDLL("libnvidia-ml.so.1"))
        except OSError:
            return None

    def _check(self, rc: int) -> None:
        if rc != 0:
            raise RuntimeError(f"NVML error {rc}")

    def nvmlInit(self) -> None:
        self._check(self.lib.nvmlInit_v2())

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any:
        import ctypes

        handle = ctypes.c_void_p()
        self._check(self.lib.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)))
        return handle

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:
        import ctypes

        mj = ctypes.c_ulonglong()
        self._check(self.lib.nvmlDeviceGetTotalEnergyConsumption(handle, ctypes.byref(mj)))
        return int(mj.value)


def find_counter(device: str, root: Path = POWERCAP, nvml: Any = None) -> Counter | None:
    """The counter that measures ``device``, or None."""
    if str(device).startswith("cuda"):
        _, _, ordinal = str(device).partition(":")
        return nvml_counter(int(ordinal) if ordinal.isdigit() else _current_cuda(), nvml)
    return rapl_counter(root)


def _current_cuda() -> int:
    import torch  # already imported by a CUDA measurement

    return int(torch.cuda.current_device())


class Meter:
    """Reads ``counter`` at the start and :meth:`columns` at the end of a loop."""

    def __init__(self, counter: Counter | None):
        self.counter = counter
        self.t0 = time.perf_counter()
        self.start = self._read()

    def _read(self) -> list[float] | None:
        if self.counter is None:
            return None
        try:
            return self.counter.read()
        except (OSError, ValueError):
            return None
        except Exception:  # an NVML error mid-run: no energy column, the row goes on
            return None

    def columns(self, images: int) -> dict[str, Any]:
        """``energy_j_per_image`` and the counter's name; None / "" when not measurable."""
        empty = {"energy_j_per_image": None, "energy_counter": ""}
        end, span = self._read(), time.perf_counter() - self.t0
        if self.counter is None or self.start is None or end is None or images <= 0:
            return empty
        if span < MIN_SPAN_S or len(end) != len(self.start):
            return {**empty, "energy_counter": self.counter.name}
        try:
            joules = sum(
                delta(a, b, w) for a, b, w in zip(self.start, end, self.counter.ranges, strict=True)
            )
        except ValueError:
            return {**empty, "energy_counter": self.counter.name}
        if joules <= 0:  # the counter did not advance: no figure rather than zero
            return {**empty, "energy_counter": self.counter.name}
        return {
            "energy_j_per_image": joules / images,
            "energy_counter": self.counter.name,
            "energy_s": round(span, 3),
        }
