"""Noise-aware statistics over timing samples.

Timings on shared machines are skewed and have outliers, so everything here is based on
medians, order statistics and ranks rather than means and normal approximations. All results
are plain Python numbers so that rows serialise to JSON as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import TypeAlias

import numpy as np

__all__ = [
    "median_ci",
    "ci_min_samples",
    "summarize",
    "ratio_summary",
    "rank_test",
    "relative_change",
]

#: Timing samples: a sequence of numbers or a NumPy array of them.
Samples: TypeAlias = Sequence[float] | np.ndarray


def _as_samples(samples: Samples, what: str = "samples") -> np.ndarray:
    """Validate and convert samples to a 1-D float array (non-empty, finite)."""
    arr = np.asarray(samples, dtype=float).ravel()
    if arr.size == 0:
        raise ValueError(f"{what} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contains non-finite values")
    return arr


def binom_half_cdf(n: int) -> list[float]:
    """``P(B <= k)`` for ``B ~ Binomial(n, 1/2)``, k = 0..n, from exact integer sums.

    Pure Python on purpose: importing scipy.stats costs most of a second at start-up, and
    every run needs this while only the gate's rank test needs scipy.
    """
    total, acc, out = 1 << n, 0, []
    for k in range(n + 1):
        acc += math.comb(n, k)
        out.append(acc / total)  # int / int is correctly rounded, even for huge n
    return out


@lru_cache(maxsize=1024)  # a function of the count alone; views summarise many rows
def _order_stat_ranks(n: int, conf: float) -> tuple[int, int] | None:
    """1-based ranks (l, u) of the order statistics bracketing the median with coverage ≥ conf.

    The number of samples below the true median is Binomial(n, 1/2), so
    ``P(x_(l) <= median <= x_(n-l+1)) = 1 - 2 * P(B <= l - 1)``. We take the largest l that
    keeps the coverage at least ``conf``; ``None`` when even (min, max) falls short.
    """
    alpha = 1.0 - conf
    cdf = np.array(binom_half_cdf(n))
    ok = np.nonzero(cdf <= alpha / 2.0 + 1e-12)[0]
    if ok.size == 0:
        return None
    low = int(ok[-1]) + 1
    low = min(low, (n + 1) // 2)
    return low, n - low + 1


def ci_min_samples(conf: float = 0.95) -> int:
    """The fewest samples whose order statistics bracket the median with coverage ≥ ``conf``
    (6 at 95%): below it :func:`median_ci` can only return the (min, max) range."""
    n = 1
    while _order_stat_ranks(n, conf) is None:
        n += 1
    return n


def median_ci(samples: Samples, conf: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics.

    Needs no assumption on the shape of the distribution, which matters for skewed timings.
    The coverage is at least ``conf`` (conservative, as order statistics are discrete). With
    too few samples for the requested level (n ≤ 5 at 95%) the range (min, max) is returned.
    """
    if not 0.0 < conf < 1.0:
        raise ValueError(f"conf must be in (0, 1), got {conf!r}")
    x = np.sort(_as_samples(samples))
    ranks = _order_stat_ranks(int(x.size), conf)
    if ranks is None:
        return float(x[0]), float(x[-1])
    low, high = ranks
    return float(x[low - 1]), float(x[high - 1])


def summarize(samples_s: Samples, items_per_call: int, noisy_cov: float = 0.10) -> dict:
    """Summary of per-call times: throughput with a CI, latency percentiles, noise flag.

    Throughput is ``items_per_call / median time``; its CI is the median-time CI inverted
    (so ``throughput_ci_low`` comes from the upper time bound). ``cov`` is std/mean of the
    times; a row is flagged ``noisy`` above ``noisy_cov`` rather than silently trusted.
    """
    t = _as_samples(samples_s, "samples_s")
    if np.any(t <= 0):
        raise ValueError("samples_s must be positive times in seconds")
    if items_per_call < 1:
        raise ValueError(f"items_per_call must be >= 1, got {items_per_call!r}")
    med = float(np.median(t))
    lo, hi = median_ci(t)
    p25, p50, p75, p90 = np.percentile(t, [25, 50, 75, 90])
    if t.size < 2 or float(np.ptp(t)) == 0.0:
        cov = 0.0
    else:
        cov = float(np.std(t, ddof=1) / np.mean(t))
    return {
        "n_samples": int(t.size),
        "throughput_median": float(items_per_call / med),
        "throughput_ci_low": float(items_per_call / hi),
        "throughput_ci_high": float(items_per_call / lo),
        "latency_ms_p50": float(p50 * 1e3),
        "latency_ms_p90": float(p90 * 1e3),
        "latency_ms_iqr": float((p75 - p25) * 1e3),
        "cov": cov,
        "noisy": bool(cov > noisy_cov),
    }


def ratio_summary(a_samples: Samples, b_samples: Samples, conf: float = 0.95) -> dict:
    """How many times faster ``a`` is than ``b``, from interleaved rounds.

    Sample i of each must come from the same round, so the per-round ratio ``b_i / a_i``
    cancels drift that hit both. Returns the median ratio, its order-statistic CI at ``conf``,
    the fraction of rounds in which ``a`` was faster, and ``n``. A claim such as "a ≥ 1.3× b"
    holds with confidence when ``ratio_ci_low >= 1.3``.
    """
    a = _as_samples(a_samples, "a_samples")
    b = _as_samples(b_samples, "b_samples")
    if a.size != b.size:
        raise ValueError(f"need paired rounds: {a.size} samples of a, {b.size} of b")
    if np.any(a <= 0) or np.any(b <= 0):
        raise ValueError("samples must be positive times")
    ratios = b / a
    lo, hi = median_ci(ratios, conf)
    return {
        "n": int(ratios.size),
        "ratio_median": float(np.median(ratios)),
        "ratio_ci_low": lo,
        "ratio_ci_high": hi,
        "conf": float(conf),
        "frac_a_faster": float(np.mean(ratios > 1.0)),
    }


def rank_test(base: Samples, cand: Samples, alternative: str = "less") -> float:
    """p-value of a Mann-Whitney U test on times; by default H1: the candidate is slower.

    ``alternative`` is passed to :func:`scipy.stats.mannwhitneyu` with ``base`` as the first
    sample, so ``"less"`` means base times are stochastically smaller than candidate times.
    Ranks make the test robust to the outliers typical of timings. Returns 1.0 when the test
    is undefined (e.g. all values tied).
    """
    if alternative not in ("less", "greater", "two-sided"):
        raise ValueError(
            f"alternative must be 'less', 'greater' or 'two-sided', not {alternative!r}"
        )
    x = _as_samples(base, "base")
    y = _as_samples(cand, "cand")
    from scipy import stats as _sps  # 0.7 s to import; only the gate's rank test needs it

    p = float(_sps.mannwhitneyu(x, y, alternative=alternative).pvalue)
    return 1.0 if np.isnan(p) else p


def relative_change(base: Samples, cand: Samples) -> float:
    """``median(cand) / median(base) - 1`` for times: +0.10 means the candidate is 10% slower."""
    mb = float(np.median(_as_samples(base, "base")))
    mc = float(np.median(_as_samples(cand, "cand")))
    if mb <= 0:
        raise ValueError("base median must be positive")
    return mc / mb - 1.0
