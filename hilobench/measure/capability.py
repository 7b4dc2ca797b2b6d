"""What this CPU runs natively, so a run in an emulated dtype is announced, not a silent stall.

Without native bfloat16 instructions (AVX-512 BF16 or AMX on x86, the BF16 extension on Arm),
PyTorch converts to float32 and back around every kernel: a 1024³ bf16 matmul took 10.7 s on an
AVX2-only EPYC against 0.19 s in float32. The user should learn that from one line at the start,
not from a run that seems to hang.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import torch

__all__ = [
    "cpu_flags",
    "cpu_capability",
    "native_cpu_dtype",
    "emulation_warning",
    "emulation_warnings",
]

#: CPU feature flags (Linux /proc/cpuinfo spelling) that give native bf16 matmuls.
_BF16_FLAGS = {"x86_64": ("avx512_bf16", "amx_bf16"), "aarch64": ("bf16",)}


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """Feature flags of the first CPU in /proc/cpuinfo (``flags`` on x86, ``Features`` on Arm)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_capability() -> str:
    """The vector level PyTorch's CPU kernels were dispatched to (e.g. AVX2, AVX512, DEFAULT).

    It honours ``ATEN_CPU_CAPABILITY``, so a run capped to AVX2 reports AVX2.
    """
    return str(torch.backends.cpu.get_cpu_capability())


def native_cpu_dtype(
    dtype: str, *, flags: set[str] | None = None, capability: str | None = None,
    machine: str | None = None,
) -> bool:  # fmt: skip
    """Whether ``dtype`` runs natively on this CPU (float32 always does)."""
    if dtype == "float32":
        return True
    if dtype != "bfloat16":
        return False  # float16 matmuls on CPUs are emulated outside a few server parts
    machine = (machine or platform.machine()).lower()
    flags = cpu_flags() if flags is None else flags
    capability = cpu_capability() if capability is None else capability
    wanted = _BF16_FLAGS.get("aarch64" if machine in ("arm64", "aarch64") else machine, ())
    if not any(f in flags for f in wanted):
        return False
    # on x86 the kernels must also be allowed to use AVX-512 (ATEN_CPU_CAPABILITY may cap them)
    return machine in ("arm64", "aarch64") or capability.upper().startswith("AVX512")


def emulation_warning(device: str, dtype: str) -> str | None:
    """One line for the user when ``dtype`` is emulated on this CPU; None otherwise."""
    if not device.startswith("cpu") or native_cpu_dtype(dtype):
        return None
    return (
        f"warning: {dtype} is emulated on this CPU (PyTorch kernel level "
        f"{cpu_capability()}, no native {dtype} instructions): calls are much slower than "
        "float32; each case still stops within its --budget"
    )


class _OnDevice(Protocol):
    """Anything that names a device and a dtype (a Case, a suite row); read-only, so frozen
    dataclasses qualify."""

    @property
    def device(self) -> str: ...

    @property
    def dtype(self) -> str: ...


def emulation_warnings(cases: Iterable[_OnDevice]) -> list[str]:
    """One warning per (device, dtype) of ``cases`` that this CPU only emulates."""
    pairs = sorted({(c.device, c.dtype) for c in cases})
    return [w for d, t in pairs if (w := emulation_warning(d, t)) is not None]
