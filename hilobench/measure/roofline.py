"""How close a layer runs to this device's matmul limit.

A MAC count says nothing until it is divided by time; dividing the achieved MAC rate by the rate a
large square GEMM reaches on the same device, dtype and threads tells a user whether a layer is
compute-bound (near 1) or lost in memory traffic, softmax and reshapes (far below 1).

The peak step must never dominate a run: a GEMM size fixed in advance can take seconds per call
where a dtype is only emulated (bf16 without native support runs ~50x slower than float32). So the
size is chosen by time (doubled while one call stays short), the whole step has a deadline, and
the result is cached per machine, device, dtype, thread count and torch version in the user's
cache directory, so only the first run on a machine pays for it.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from platformdirs import user_cache_dir

from hilobench.measure.dtypes import TORCH_DTYPES as _DTYPES
from hilobench.measure.dtypes import apply_precision
from hilobench.measure.env import _cpu_model
from hilobench.measure.timing import _sync_for, _timed_calls, time_fn

__all__ = ["Peak", "peak_macs_per_s", "measure_peak", "cache_path", "achieved_fraction"]

#: Environment variable that moves the cache (tests, read-only homes).
CACHE_ENV = "HILOBENCH_CACHE_DIR"
CACHE_FILE = "roofline.json"
#: Seconds the whole peak step may take (size search + sampling), any dtype, any device.
PEAK_BUDGET_S = 1.5
#: The size search stops before one call would exceed this many seconds.
TARGET_CALL_S = 0.1
MIN_N = 64
PREWARM_S = 0.3


@dataclass(frozen=True)
class Peak:
    """A measured GEMM rate and how it was obtained."""

    macs_per_s: float
    n: int
    seconds: float
    cached: bool = False


def max_gemm_size(device: str) -> int:
    """Largest side tried: past it a GEMM is compute-bound on any device we know of."""
    return 8192 if device.startswith("cuda") else 4096


def cache_path() -> Path:
    """``$HILOBENCH_CACHE_DIR/roofline.json``, else the platform's user cache directory."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        root = user_cache_dir("hilobench", appauthor=False)
    return Path(root) / CACHE_FILE


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return _cpu_model()


def cache_key(device: str, dtype: str, threads: int) -> str:
    """What the peak depends on: hardware, dtype, threads, torch and its CPU kernel level."""
    cap = torch.backends.cpu.get_cpu_capability() if not device.startswith("cuda") else "cuda"
    return "|".join(
        [device.split(":")[0], _device_name(device), dtype, str(threads), torch.__version__, cap]
    )


def _read_cache(path: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}  # missing or corrupt: measure again and rewrite
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, key: str, peak: Peak) -> None:
    """Best effort: a cache that cannot be written only costs the next run a measurement."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _read_cache(path)
        data[key] = {k: v for k, v in asdict(peak).items() if k != "cached"}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def _scalar(entry: dict[str, object], key: str) -> float | str:
    """The value cached under ``key``: a number or a string (float() / int() then judge it)."""
    value = entry[key]
    if not isinstance(value, float | int | str):
        raise TypeError(f"cached {key} is {type(value).__name__}, not a number")
    return value


def _cached(path: Path, key: str) -> Peak | None:
    entry = _read_cache(path).get(key)
    if not isinstance(entry, dict):
        return None
    try:
        rate, secs = float(_scalar(entry, "macs_per_s")), float(_scalar(entry, "seconds"))
        n = int(_scalar(entry, "n"))
    except (KeyError, TypeError, ValueError):
        return None
    return Peak(rate, n, secs, cached=True) if rate > 0 and n > 0 else None


def measure_peak(
    device: str = "cpu", dtype: str = "float32", budget_s: float = PEAK_BUDGET_S
) -> Peak:
    """Measure the MAC/s of a square GEMM whose side is chosen by time, within ``budget_s``.

    The side doubles from ``MIN_N`` while the next call would stay under ``TARGET_CALL_S`` and
    half the budget is left; the rest of the budget samples the chosen size and the fastest
    sample counts (the limit is what the hardware can do).
    """
    start = time.perf_counter()
    apply_precision(dtype, device)  # tf32's peak is the TF32 GEMM's, float32's the IEEE one's
    sync = _sync_for(device)
    gen = torch.Generator(device="cpu").manual_seed(0)
    tdtype = _DTYPES[dtype]

    def operands(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        a = torch.randn(n, n, generator=gen).to(device=device, dtype=tdtype)
        b = torch.randn(n, n, generator=gen).to(device=device, dtype=tdtype)
        return a, b

    def one_call(a: torch.Tensor, b: torch.Tensor) -> float:
        return _timed_calls(lambda: torch.mm(a, b), sync, 1)

    n, n_max = MIN_N, max_gemm_size(device)
    with torch.inference_mode():
        a, b = operands(n)
        # Wake the thread pool and load the BLAS before anything is judged: the first ~10
        # small calls of a process can each take 15 ms. Stop once two calls are fast.
        fast = 0
        while fast < 2 and time.perf_counter() - start < PREWARM_S:
            fast = fast + 1 if one_call(a, b) < 1e-3 else 0
        prev_s = math.inf
        while True:
            a, b = operands(n)
            # the fastest of three calls: the first pays for allocation and kernel selection,
            # and a lone call at a small size can be swamped by thread wake-up
            call_s = min(one_call(a, b) for _ in range(3))
            elapsed = time.perf_counter() - start
            # keep growing while the next call stays short, or while doubling the side did not
            # even double the time (fixed overheads, e.g. a busy machine's thread wake-ups,
            # still dominate and the rate would be meaningless)
            short = 8 * call_s < TARGET_CALL_S or call_s < 2 * prev_s
            if 2 * n > n_max or not short or elapsed + 8 * call_s > budget_s / 2:
                break
            n, prev_s = 2 * n, call_s
        left = max(0.0, budget_s - (time.perf_counter() - start))
        t = time_fn(lambda: torch.mm(a, b), device=device, budget_s=left, min_samples=3,
                    min_warmup=0, strict_budget=True)  # fmt: skip
    best = min([call_s, *t.samples_s])
    return Peak(n**3 / best, n, round(time.perf_counter() - start, 3))


def peak_macs_per_s(
    device: str = "cpu",
    dtype: str = "float32",
    budget_s: float = PEAK_BUDGET_S,
    *,
    use_cache: bool = True,
) -> float:
    """This device's GEMM MAC/s at ``dtype`` and the current thread count, cached per machine."""
    key = cache_key(device, dtype, torch.get_num_threads())
    path = cache_path()
    if use_cache and (hit := _cached(path, key)) is not None:
        return hit.macs_per_s
    peak = measure_peak(device, dtype, budget_s)
    if use_cache:
        _write_cache(path, key, peak)
    return peak.macs_per_s


def achieved_fraction(
    macs_per_image: int | None, images_per_s: float | None, peak: float
) -> float | None:
    """Achieved MAC rate over the peak GEMM rate; None when a figure is missing."""
    if not macs_per_image or not images_per_s or not peak:
        return None
    return macs_per_image * images_per_s / peak
