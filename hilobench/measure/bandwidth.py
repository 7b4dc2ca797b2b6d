"""This device's memory-bandwidth peak: the bytes/s of a large tensor copy, cached per machine.

The ``bound`` diagnosis divides a step's traced bytes per second by this figure. A copy reads
and writes every byte once (2 × size moved) with no arithmetic, so its rate is what the memory
system sustains for streaming access; a working set far larger than the last-level cache makes
it a DRAM (HBM) figure. As with the GEMM peak (:mod:`hilobench.measure.roofline`) the size is
chosen by time, the step has a deadline, and the result is cached next to the GEMM peaks under
a key of the hardware, thread count and torch version, so only the first run pays.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from hilobench.measure.roofline import (
    Peak,
    _cached,
    _device_name,
    _write_cache,
    cache_path,
)
from hilobench.measure.timing import _sync_for, _timed_calls, time_fn

__all__ = ["bandwidth_peak", "measure_bandwidth", "cache_key"]

#: Seconds the whole bandwidth step may take.
BW_BUDGET_S = 1.0
#: Smallest and largest copy (bytes per tensor): 16 MiB already leaves most L2s; the largest is
#: well past any last-level cache (CPU L3 ≲ 512 MiB on the largest parts, GPU L2 ≲ 128 MiB).
MIN_BYTES = 16 * 2**20
MAX_BYTES = {"cpu": 512 * 2**20, "cuda": 2 * 2**30}
TARGET_CALL_S = 0.05


def cache_key(device: str, threads: int) -> str:
    """What the bandwidth depends on: the hardware, threads and torch (not the dtype)."""
    kind = device.split(":")[0]
    return "|".join(["bandwidth", kind, _device_name(device), str(threads), torch.__version__])


def _free_bytes(device: str) -> int:
    if device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    import psutil  # ~20 ms: only here

    return int(psutil.virtual_memory().available)


def _copier(dst: torch.Tensor, src: torch.Tensor) -> Callable[[], object]:
    return lambda: dst.copy_(src)


def measure_bandwidth(device: str = "cpu", budget_s: float = BW_BUDGET_S) -> Peak:
    """Bytes/s of ``dst.copy_(src)`` (2 × size moved per call), the size doubled from
    ``MIN_BYTES`` while a call stays under ``TARGET_CALL_S``, within a fifth of free memory;
    the fastest sample counts. ``Peak.macs_per_s`` holds bytes/s here (one cache format)."""
    start = time.perf_counter()
    sync = _sync_for(device)
    limit = min(MAX_BYTES["cuda" if device.startswith("cuda") else "cpu"], _free_bytes(device) // 5)
    size = min(MIN_BYTES, max(limit, 2**20))
    with torch.inference_mode():
        while True:
            src = torch.ones(size // 4, device=device)
            dst = torch.empty_like(src)
            copy = _copier(dst, src)
            call_s = min(_timed_calls(copy, sync, 1) for _ in range(3))
            if 2 * size > limit or 4 * call_s > TARGET_CALL_S:
                break
            if time.perf_counter() - start + 8 * call_s > budget_s / 2:
                break
            size *= 2
        left = max(0.0, budget_s - (time.perf_counter() - start))
        t = time_fn(copy, device=device, budget_s=left, min_samples=3,
                    min_warmup=0, strict_budget=True)  # fmt: skip
    best = min([call_s, *t.samples_s])
    return Peak(2 * src.numel() * 4 / best, size, round(time.perf_counter() - start, 3))


def bandwidth_peak(device: str = "cpu", *, use_cache: bool = True) -> float:
    """This device's copy bandwidth (bytes/s) at the current thread count, cached per machine."""
    key = cache_key(device, torch.get_num_threads())
    path = cache_path()
    if use_cache and (hit := _cached(path, key)) is not None:
        return hit.macs_per_s
    peak = measure_bandwidth(device)
    if use_cache:
        _write_cache(path, key, peak)
    return peak.macs_per_s
