"""Speed statistics of the gate: the independent units, the rank tests, the ratio intervals.

A case regresses when its time rises both by at least ``min_effect`` and significantly (a
one-sided rank test, ``p < alpha``, on >= ``min_samples`` independent units a side). A rise
that is significant but smaller, or large but not significant, is *borderline*: it is
measured again, afresh, and fails only if the new measurement confirms a significant rise of
at least ``confirm_fraction * min_effect``. Judging the first measurement at the full effect
and the confirmation at a lower one lets the gate catch a true ``min_effect`` slowdown (about
half the time at once, nearly always on confirmation) while noise has to fake a slowdown twice.

The units: the gate's rows come in blocks, each a fresh build of the case on both sides;
builds of identical code differ more than samples of one build, so the per-block ratio
(candidate / base) is the unit, tested with the Wilcoxon signed-rank test. Rows without
blocks but from the same interleaved rounds use per-round ratios; independent rows use the
ratio of medians (bootstrap interval) and Mann-Whitney.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hilobench.core import numfmt as nf
from hilobench.core.claim_terms import CaseVerdict
from hilobench.gate.policy import SpeedPolicy
from hilobench.gate.row_ids import row_context
from hilobench.measure import stats

#: Seed of the bootstrap, so a stored comparison always gives the same interval.
BOOTSTRAP_SEED = 20240617
BOOTSTRAP_RESAMPLES = 2000


@dataclass
class SpeedResult:
    """The speed verdict of one case. ``change`` is candidate time / base time - 1."""

    verdict: CaseVerdict
    change: float | None = None
    ci: tuple[float, float] | None = None
    p_value: float | None = None
    n_base: int = 0
    n_cand: int = 0
    paired: bool = False
    unit: str = "samples"
    base_median_s: float | None = None
    cand_median_s: float | None = None
    note: str = ""
    first: SpeedResult | None = None  # the first measurement, when this is a re-measurement

    def to_json(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "first"}
        d["ci"] = list(self.ci) if self.ci else None
        d["first"] = self.first.to_json() if self.first else None
        return d


def bootstrap_ratio_ci(
    num: Sequence[float], den: Sequence[float], conf: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``median(num) / median(den)`` from independent samples."""
    x = np.asarray(num, dtype=float)
    y = np.asarray(den, dtype=float)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    mx = np.median(x[rng.integers(0, x.size, (BOOTSTRAP_RESAMPLES, x.size))], axis=1)
    my = np.median(y[rng.integers(0, y.size, (BOOTSTRAP_RESAMPLES, y.size))], axis=1)
    r = mx / my
    tail = (1.0 - conf) / 2.0
    lo, hi = np.quantile(r, [tail, 1.0 - tail])
    return float(lo), float(hi)


def is_paired(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when two rows' samples were taken in the same interleaved rounds (the gate marks
    both sides of a case with one ``round_group``)."""
    ga, gb = a.get("round_group"), b.get("round_group")
    sa, sb = a.get("samples_s") or [], b.get("samples_s") or []
    return bool(ga) and ga == gb and len(sa) == len(sb)


def same_rounds(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Rows of one run timed together round by round: a gate pair, or members of one suite
    compare group at one setting (the runner marks them ``interleaved`` with their group)."""
    if is_paired(a, b):
        return True
    sa, sb = a.get("samples_s") or [], b.get("samples_s") or []
    return (
        bool(sa)
        and len(sa) == len(sb)
        and bool(a.get("interleaved") and b.get("interleaved"))
        and bool(a.get("group"))
        and a.get("group") == b.get("group")
        and row_context(a) == row_context(b)
    )


@dataclass(frozen=True)
class Timings:
    """Per-sample seconds of both sides of one case, and how they were taken.

    ``paired``: sample *i* of each side comes from the same interleaved round (or block).
    ``blocks``: the build (block) each sample came from; samples of one build share its
    memory layout, so builds, not samples, are the independent units then.
    """

    base: Sequence[float]
    cand: Sequence[float]
    paired: bool = False
    blocks: Sequence[int] | None = None

    @classmethod
    def of_rows(cls, base: Mapping[str, Any], cand: Mapping[str, Any], prefix: str = "") -> Timings:
        """Timings of two rows (``prefix="remeasure_"`` for the gate's re-measurement)."""
        sb = list(base.get(f"{prefix}samples_s") or [])
        sc = list(cand.get(f"{prefix}samples_s") or [])
        paired = is_paired(base, cand) if not prefix else bool(base.get("round_group"))
        paired = paired and len(sb) == len(sc)
        bb, bc = base.get(f"{prefix}sample_blocks"), cand.get(f"{prefix}sample_blocks")
        blocks = list(bb) if paired and bb and bb == bc and len(bb) == len(sb) else None
        return cls(sb, sc, paired, blocks)


def _units(t: Timings) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str]:
    """The independent units: (base, cand, per-unit cand/base ratios or None, unit name)."""
    b = np.asarray(t.base, dtype=float)
    c = np.asarray(t.cand, dtype=float)
    if t.paired and t.blocks is not None:
        ids = np.asarray(t.blocks)
        keys = list(dict.fromkeys(ids.tolist()))
        ratio = np.array([np.median(c[ids == k] / b[ids == k]) for k in keys])
        bm = np.array([np.median(b[ids == k]) for k in keys])
        cm = np.array([np.median(c[ids == k]) for k in keys])
        return bm, cm, ratio, "builds"
    if t.paired:
        return b, c, c / b, "rounds"
    return b, c, None, "samples"


def _wilcoxon_p(logs: np.ndarray, alternative: str) -> float:
    """One-sided Wilcoxon signed-rank p-value on log ratios (1.0 when all are zero)."""
    if not np.any(logs != 0):
        return 1.0
    from scipy import stats as sps  # 0.7 s to import; only the per-build test needs it

    p = float(sps.wilcoxon(logs, alternative=alternative).pvalue)
    return 1.0 if math.isnan(p) else p


def _slower_p(bu: np.ndarray, cu: np.ndarray, ratio: np.ndarray | None, unit: str) -> float:
    """One-sided p-value that the candidate is slower. Paired builds: Wilcoxon signed-rank on
    the log of the per-build ratios (drift between builds cancels); otherwise Mann-Whitney on
    the samples."""
    if ratio is not None and unit == "builds":
        return _wilcoxon_p(np.log(ratio), "greater")
    return stats.rank_test(bu.tolist(), cu.tolist(), "less")


def _faster_p(bu: np.ndarray, cu: np.ndarray, ratio: np.ndarray | None, unit: str) -> float:
    if ratio is not None and unit == "builds":
        return _wilcoxon_p(np.log(ratio), "less")
    return stats.rank_test(bu.tolist(), cu.tolist(), "greater")


def judge_speed(t: Timings, policy: SpeedPolicy, *, confirming: bool = False) -> SpeedResult:
    """Verdict on one case's timings. ``confirming``: this is the re-measurement of a
    borderline case, judged at ``confirm_fraction * min_effect`` and never borderline again.
    """
    bu, cu, ratio, unit = _units(t)
    nb, nc = len(bu), len(cu)
    if nb < policy.min_samples or nc < policy.min_samples:
        return SpeedResult(
            CaseVerdict.UNJUDGED,
            n_base=nb,
            n_cand=nc,
            unit=unit,
            note=f"needs >= {policy.min_samples} {unit} on each side, has {nb} and {nc}",
        )
    if ratio is not None:  # median of per-round (or per-build) ratios: drift cancels
        lo, hi = stats.median_ci(ratio.tolist())
        change, ci = float(np.median(ratio)) - 1.0, (lo - 1.0, hi - 1.0)
    else:  # independent samples: ratio of medians, bootstrap interval
        lo, hi = bootstrap_ratio_ci(cu.tolist(), bu.tolist())
        change, ci = stats.relative_change(bu.tolist(), cu.tolist()), (lo - 1.0, hi - 1.0)
    p_slower = _slower_p(bu, cu, ratio, unit)
    res = SpeedResult(
        CaseVerdict.PASS,
        change=change,
        ci=ci,
        p_value=p_slower,
        n_base=nb,
        n_cand=nc,
        paired=t.paired,
        unit=unit,
        base_median_s=float(np.median(t.base)),
        cand_median_s=float(np.median(t.cand)),
    )
    significant = p_slower < policy.alpha
    low = policy.confirm_fraction * policy.min_effect
    if confirming:
        if significant and change >= low:
            res.verdict = CaseVerdict.REGRESSION
            res.note = f"confirmed on re-measurement (>= {nf.share(low)}, p < {policy.alpha})"
        else:
            res.note = "cleared on re-measurement"
        return res
    if significant and change >= policy.min_effect:
        res.verdict = CaseVerdict.REGRESSION
    elif (significant and change >= low) or change >= policy.min_effect:
        res.verdict = CaseVerdict.BORDERLINE
        res.note = (
            "significant but below the minimum effect"
            if significant
            else "large but not significant"
        )
    elif change <= -policy.min_effect and _faster_p(bu, cu, ratio, unit) < policy.alpha:
        res.verdict = CaseVerdict.IMPROVED
    return res
