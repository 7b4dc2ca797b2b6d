"""How close a layer runs to this device's matmul limit.

A MAC count says nothing until it is divided by time; dividing the achieved MAC rate by the rate a
large square GEMM reaches on the same device, dtype and threads tells a user whether a layer is
compute-bound (near 1) or lost in memory traffic, softmax and reshapes (far below 1).
"""

from __future__ import annotations

import torch

from hilobench.measure.timing import time_fn

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def gemm_size(device: str) -> int:
    """Side of the square GEMM: large enough to be compute-bound, small enough to be quick."""
    return 8192 if device.startswith("cuda") else 3072


def peak_macs_per_s(
    device: str = "cpu", dtype: str = "float32", budget_s: float = 2.0
) -> float:
    """Measured MAC/s of an ``n×n @ n×n`` matmul (n from :func:`gemm_size`) at ``dtype``."""
    n = gemm_size(device)
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device=device, dtype=_DTYPES[dtype])
    b = torch.randn(n, n, generator=gen).to(device=device, dtype=_DTYPES[dtype])

    def gemm() -> torch.Tensor:
        return a @ b

    with torch.inference_mode():
        t = time_fn(gemm, device=device, budget_s=budget_s, min_samples=5)
    best = min(t.samples_s)  # the limit is what the hardware can do, so take the fastest run
    return n**3 / best


def achieved_fraction(
    macs_per_image: int | None, images_per_s: float | None, peak: float
) -> float | None:
    """Achieved MAC rate over the peak GEMM rate; None when a figure is missing."""
    if not macs_per_image or not images_per_s or not peak:
        return None
    return macs_per_image * images_per_s / peak
