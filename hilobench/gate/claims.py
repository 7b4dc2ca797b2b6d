"""Ratio claims ("hilo's throughput is at least 1.3x sra's"), parsed once and checked on rows.

``a`` and ``b`` are suite case ids. Rows of ``a`` and ``b`` are paired at each setting they
share (resolution, impl, device, ...), one result per setting. Speed ratios come with a
confidence interval (per-round ratios for interleaved rows, else a bootstrap of the ratio of
medians): a claim passes when the whole interval satisfies its bounds, fails when the whole
interval violates one, and is inconclusive otherwise. Counts are exact: their interval is a
point. A claim with a ``device`` holds only for rows measured there: on another device it is
``not applicable``, never a failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hilobench.core.claim_terms import (
    CLAIM_DEVICES,
    CLAIM_KEYS,
    CLAIM_METRICS,
    SPEED_METRICS,
    ClaimStatus,
)
from hilobench.core.errors import ConfigError
from hilobench.core.row import is_measured
from hilobench.gate.row_ids import row_context, row_id, row_label
from hilobench.gate.speed import bootstrap_ratio_ci, same_rounds
from hilobench.measure import stats


@dataclass(frozen=True)
class Claim:
    """A validated ratio claim. ``raw`` keeps the mapping it was parsed from, for reports."""

    a: str
    b: str
    metric: str = "throughput"
    min_ratio: float | None = None
    max_ratio: float | None = None
    name: str = ""
    #: "cpu" or "cuda": the claim holds for rows on that device only ("" = any device)
    device: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def parse(cls, claim: Mapping[str, Any] | Claim) -> Claim:
        """Refuse a malformed claim with a message that names what is wrong."""
        if isinstance(claim, Claim):
            return claim
        if not isinstance(claim, Mapping):
            raise ConfigError(f"a claim must be a mapping, got {claim!r}")
        for k in ("a", "b"):
            if claim.get(k) in (None, ""):
                raise ConfigError(f"claim {dict(claim)} lacks {k!r} (a case id)")
        metric = claim.get("metric", "throughput")
        if metric not in CLAIM_METRICS:
            raise ConfigError(
                f"claim metric {metric!r} unknown; choose from: {', '.join(CLAIM_METRICS)}"
            )
        bounds = [b for b in ("min_ratio", "max_ratio") if claim.get(b) is not None]
        if not bounds:
            raise ConfigError(f"claim {dict(claim)} needs min_ratio and/or max_ratio")
        for b in bounds:
            v = claim[b]
            if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
                raise ConfigError(f"claim {b} must be a number > 0, got {v!r}")
        unknown = set(claim) - set(CLAIM_KEYS)
        if unknown:
            raise ConfigError(f"unknown claim key(s) {sorted(unknown)}")
        device = claim.get("device") or ""
        if device and device not in CLAIM_DEVICES:
            raise ConfigError(
                f"claim device {device!r} unknown; choose from: {', '.join(CLAIM_DEVICES)}"
            )
        return cls(
            a=str(claim["a"]),
            b=str(claim["b"]),
            metric=str(metric),
            min_ratio=claim.get("min_ratio"),
            max_ratio=claim.get("max_ratio"),
            name=str(claim.get("name") or ""),
            device=str(device),
            raw=dict(claim),
        )

    @property
    def text(self) -> str:
        if self.name:
            return self.name
        bounds = []
        if self.min_ratio is not None:
            bounds.append(f">= {self.min_ratio}x")
        if self.max_ratio is not None:
            bounds.append(f"<= {self.max_ratio}x")
        return f"{self.a} {self.metric} {' and '.join(bounds)} {self.b}"

    def judge(self, lo: float, hi: float) -> ClaimStatus:
        """``pass`` / ``fail`` / ``inconclusive`` for a ratio interval ``[lo, hi]``."""
        violated = (self.min_ratio is not None and hi < float(self.min_ratio)) or (
            self.max_ratio is not None and lo > float(self.max_ratio)
        )
        held = (self.min_ratio is None or lo >= float(self.min_ratio)) and (
            self.max_ratio is None or hi <= float(self.max_ratio)
        )
        if violated:
            return ClaimStatus.FAIL
        return ClaimStatus.PASS if held else ClaimStatus.INCONCLUSIVE


@dataclass
class ClaimResult:
    """A ratio claim checked on rows. ``ratio`` is how many times better ``a`` is than ``b``:
    ``a/b`` for throughput, ``b/a`` for the costs (latency, macs, params, memory)."""

    claim: Claim
    status: ClaimStatus
    a_label: str = ""
    b_label: str = ""
    ratio: float | None = None
    ci: tuple[float, float] | None = None
    method: str = ""
    note: str = ""

    @property
    def text(self) -> str:
        return self.claim.text

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["claim"] = self.claim.raw
        d["ci"] = list(self.ci) if self.ci else None
        d["text"] = self.text
        return d


def _speed_ratio(
    a: Mapping[str, Any], b: Mapping[str, Any], metric: str, conf: float
) -> tuple[float, tuple[float, float], str] | None:
    """(ratio, ci, method): how many times better ``a`` is than ``b`` in speed."""
    ta, tb = a.get("samples_s") or [], b.get("samples_s") or []
    if len(ta) < 2 or len(tb) < 2:
        return None
    scale = 1.0
    if metric == "throughput":  # images per second: a larger batch counts for more
        scale = float(a.get("batch") or 1) / float(b.get("batch") or 1)
    if same_rounds(a, b):
        s = stats.ratio_summary(ta, tb, conf)  # per-round tb / ta
        ci = (s["ratio_ci_low"] * scale, s["ratio_ci_high"] * scale)
        return s["ratio_median"] * scale, ci, "per-round"
    lo, hi = bootstrap_ratio_ci(tb, ta, conf)
    ratio = float(np.median(tb)) / float(np.median(ta)) * scale
    return ratio, (lo * scale, hi * scale), "bootstrap"


def check_claims(
    rows: Iterable[Mapping[str, Any]],
    claims: Iterable[Mapping[str, Any] | Claim],
    conf: float = 0.95,
) -> list[ClaimResult]:
    """Check ratio claims such as ``{a: hilo, b: sra, metric: throughput, min_ratio: 1.3}``
    on rows: one result per setting that rows of both ``a`` and ``b`` share."""
    parsed = [Claim.parse(c) for c in claims]  # all refused before any is checked
    ok_rows = [r for r in rows if is_measured(r, "ok")]
    results: list[ClaimResult] = []
    for claim in parsed:
        rows_here = ok_rows
        if claim.device:
            rows_here = [r for r in ok_rows if on_device(r, claim.device)]
            if not rows_here and ok_rows:
                note = f"a claim about {claim.device} rows; these were measured elsewhere"
                results.append(ClaimResult(claim, ClaimStatus.NOT_APPLICABLE, note=note))
                continue
        a_rows = [r for r in rows_here if row_id(r) == claim.a]
        b_rows = [r for r in rows_here if row_id(r) == claim.b]
        pairs = [
            (ra, rb)
            for ra in a_rows
            for rb in b_rows
            if ra is not rb and row_context(ra) == row_context(rb)
        ]
        if not pairs:
            note = (
                f"no rows to compare ({len(a_rows)} of a, {len(b_rows)} of b at a shared setting)"
            )
            results.append(ClaimResult(claim, ClaimStatus.MISSING, note=note))
            continue
        results.extend(_check_pair(claim, ra, rb, conf) for ra, rb in pairs)
    return results


def on_device(row: Mapping[str, Any], device: str) -> bool:
    """``cuda`` covers ``cuda:1``; a row without a device is a CPU row (older runs)."""
    return str(row.get("device") or "cpu").split(":")[0] == device


def _check_pair(
    claim: Claim, ra: Mapping[str, Any], rb: Mapping[str, Any], conf: float
) -> ClaimResult:
    res = ClaimResult(claim, ClaimStatus.INCONCLUSIVE, a_label=row_label(ra), b_label=row_label(rb))
    if claim.metric in SPEED_METRICS:
        got = _speed_ratio(ra, rb, claim.metric, conf)
        if got is None:
            res.status, res.note = ClaimStatus.MISSING, "rows have no timing samples"
            return res
        res.ratio, res.ci, res.method = got
    else:
        col = CLAIM_METRICS[claim.metric]
        va, vb = ra.get(col), rb.get(col)
        if not va or vb is None:
            res.status, res.note = ClaimStatus.MISSING, f"rows lack {col}"
            return res
        res.ratio = float(vb) / float(va)  # a cost: a is better when it is smaller
        res.ci, res.method = (res.ratio, res.ratio), "exact"
    res.status = claim.judge(*res.ci)
    return res
