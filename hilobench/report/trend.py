"""A run's rows in the formats that benchmark-history tools read, so CI can keep a trend.

* ``github-action-benchmark``: the JSON list its ``customBiggerIsBetter`` tool reads
  (``customSmallerIsBetter`` for latency): ``{name, unit, value, range?, extra?}`` per case,
  ``range`` and ``extra`` being text the charts show beside the value.
* ``bencher``: Bencher Metric Format, ``{benchmark: {measure: {value, lower_value?,
  upper_value?}}}``, read by ``bencher run --adapter json``.

Each case that was measured (status ``ok``) gives one entry: its median with the 95% interval
derived from the row's samples (:mod:`hilobench.measure.rowstats`; throughput: images per
second), named by the case's label, which stays
the same from commit to commit. Failed cases are left out: a trend of medians has no place for
"OOM".
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from hilobench.core import numfmt as nf
from hilobench.core.case import Case
from hilobench.core.errors import ConfigError
from hilobench.core.row import is_measured
from hilobench.measure.rowstats import shown

FORMATS = ("github-action-benchmark", "bencher")
METRICS = ("throughput", "latency")


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def bench_names(rows: list[dict[str, Any]]) -> list[str]:
    """A stable name per row: the case's label (``hilo/fused 224 b64 float32 infer``), with
    its key added where two rows would share a label (another device or thread count)."""
    labels = []
    for r in rows:
        try:
            labels.append(Case.from_json(r["case"]).label())
        except (KeyError, TypeError, ValueError, AttributeError):  # a row without its case
            labels.append(f"{r.get('name', 'case')} [{r['case_key']}]")
    seen: dict[str, int] = {}
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
    return [
        f"{lab} [{r['case_key']}]" if seen[lab] > 1 else lab
        for lab, r in zip(labels, rows, strict=True)
    ]


def measured(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with a median throughput (measured, timed), their statistics derived."""
    seen = (shown(r) for r in rows)
    return [r for r in seen if is_measured(r) and _num(r.get("throughput_median")) is not None]


def github_action_benchmark(
    rows: list[dict[str, Any]], metric: str = "throughput", machine: str = ""
) -> list[dict[str, Any]]:
    """Entries for github-action-benchmark's custom tools (bigger is better for throughput,
    smaller for latency)."""
    rows = [shown(r) for r in rows]
    out = []
    for name, r in zip(bench_names(rows), rows, strict=True):
        n = r.get("n_samples")
        where = f"; {machine}" if machine else ""
        if metric == "throughput":
            med = float(r["throughput_median"])
            lo, hi = _num(r.get("throughput_ci_low")), _num(r.get("throughput_ci_high"))
            entry: dict[str, Any] = {"name": name, "unit": "img/s", "value": round(med, 4)}
            if lo is not None and hi is not None:
                entry["range"] = f"± {nf.short(max(hi - med, med - lo))}"
                entry["extra"] = (
                    f"median of {n} samples, 95% CI {nf.short(lo)} to {nf.short(hi)}{where}"
                )
            else:
                entry["extra"] = f"median of {n} samples{where}"
        else:
            p50 = _num(r.get("latency_ms_p50"))
            if p50 is None:
                continue
            entry = {"name": name, "unit": "ms", "value": round(p50, 6)}
            iqr = _num(r.get("latency_ms_iqr"))
            if iqr is not None:
                entry["range"] = f"IQR {nf.short(iqr)}"
            entry["extra"] = f"median latency of {n} samples{where}"
        out.append(entry)
    return out


def bencher_metric_format(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Bencher Metric Format: ``throughput`` (img/s, median and 95% interval) and, where the
    row has it, ``latency`` (nanoseconds, Bencher's unit for it, median only)."""
    rows = [shown(r) for r in rows]
    out: dict[str, dict[str, Any]] = {}
    for name, r in zip(bench_names(rows), rows, strict=True):
        tp: dict[str, float] = {"value": float(r["throughput_median"])}
        lo, hi = _num(r.get("throughput_ci_low")), _num(r.get("throughput_ci_high"))
        if lo is not None and hi is not None:
            tp.update(lower_value=lo, upper_value=hi)
        measures: dict[str, Any] = {"throughput": tp}
        p50 = _num(r.get("latency_ms_p50"))
        if p50 is not None:
            measures["latency"] = {"value": p50 * 1e6}
        out[name] = measures
    return out


def export(
    rows: list[dict[str, Any]], fmt: str, metric: str = "throughput", machine: str = ""
) -> Any:
    """The JSON document of ``fmt`` for ``rows``; ConfigError when no case was measured."""
    ok = measured(rows)
    if not ok:
        raise ConfigError("no measured case (status ok with a median) to export")
    if fmt == "bencher":
        return bencher_metric_format(ok)
    return github_action_benchmark(ok, metric, machine)
