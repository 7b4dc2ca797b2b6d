"""The CUDA side of ``profile`` checked on any machine, with profiler events made by hand:
kernels are charged to the part whose operator launched them, and the breakdown states the
kernels' share of the step on CUDA only (the CPU output is unchanged)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from hilobench.profile.attribute import MODULE_PREFIX, OUTSIDE, STEP, attribute
from hilobench.profile.breakdown import Breakdown, device_summary
from hilobench.profile.output import summary


@dataclass
class _Range:
    start: float
    end: float


@dataclass
class _Dev:
    name: str


@dataclass
class _Kernel:
    name: str
    device: int
    duration: float


@dataclass
class _Event:
    name: str
    time_range: _Range
    cpu_parent: Any = None
    kernels: list[_Kernel] = field(default_factory=list)
    device_type: _Dev = field(default_factory=lambda: _Dev("CPU"))
    sequence_nr: int = -1
    thread: int = 1


def _events() -> list[Any]:
    """One step (0–1000 µs): a module range holding an op whose kernels take 250 µs, an op
    outside any module with a 100 µs kernel, and the kernels' own device-side events."""
    step = _Event(STEP, _Range(0, 1000))
    block = _Event(MODULE_PREFIX + "blk", _Range(100, 600), cpu_parent=step)
    mm = _Event("aten::mm", _Range(200, 300), cpu_parent=block,
                kernels=[_Kernel("gemm", 0, 200.0), _Kernel("add", 0, 50.0)])  # fmt: skip
    cast = _Event("aten::copy_", _Range(700, 800), cpu_parent=step,
                  kernels=[_Kernel("copy", 0, 100.0)])  # fmt: skip
    on_gpu = [_Event(k.name, _Range(300, 300 + k.duration), device_type=_Dev("CUDA"))
              for k in (*mm.kernels, *cast.kernels)]  # fmt: skip
    return [step, block, mm, cast, *on_gpu]


def test_kernels_are_charged_to_the_launching_part() -> None:
    a = attribute(_events())
    assert a.device == pytest.approx({"blk": 250e-6, OUTSIDE: 100e-6})
    # the host-side parts still tile the step (the closure check's sum)
    assert sum(sum(p.values()) for p in a.parts.values()) == pytest.approx(1000e-6)
    cuda = device_summary(a, "cuda")
    assert cuda["kernel_s"] == pytest.approx(350e-6)
    assert cuda["device_busy"] == pytest.approx(0.35)
    assert device_summary(a, "cpu") == {}


def _breakdown(**kw: Any) -> Breakdown:
    base: dict[str, Any] = dict(case={}, label="x", device="cuda", mode="infer", threads=1,
                                steps=1, step_s=1e-3, step_samples=[1e-3], profiled_step_s=1e-3,
                                parts_sum_s=1e-3, residual=0.0, tolerance=0.05)  # fmt: skip
    return Breakdown(**{**base, **kw})


def test_summary_names_the_kernel_share_on_cuda_only() -> None:
    cuda = _breakdown(kernel_s=0.35e-3, device_busy=0.35)
    assert "kernels 0.35 ms = 35% of the profiled step" in summary(cuda)
    cpu = _breakdown(device="cpu")
    assert "kernels" not in summary(cpu)
    again = Breakdown.from_json(cuda.to_json())  # stored profiles keep the figures
    assert again.kernel_s == cuda.kernel_s and again.device_busy == 0.35
    old = cpu.to_json()
    del old["kernel_s"], old["device_busy"]  # a profile.json from before the fields
    assert Breakdown.from_json(old).kernel_s is None
