"""The statistics a person sees for a row, derived in one place: median throughput and its 95%
interval, latency percentiles, sample count, CoV and the noisy flag.

A row keeps its raw measurement, as ``torch.utils.benchmark.Measurement`` keeps raw times: the
per-layer seconds of one call (``samples_s``) and the images per call (``batch``). The summary
columns written beside them at measure time (``throughput_median`` and the rest of
:data:`STATS`) stay in the row for rows.jsonl consumers, but no view trusts them: tables,
reports, exports and the gate's notes ask :func:`derive` (or :func:`shown`), which recomputes
them from the samples with :func:`hilobench.measure.stats.summarize`. Only a row without usable
samples (written before samples were kept, a gate row that timed nothing, a max-batch search)
shows the columns it stored, so old rows load and read as they did.

Why here: the numbers come from :mod:`hilobench.measure.stats`, and ``core`` lies below
``measure``, so the core table columns (:mod:`hilobench.core.columns`) cannot import this
module; the views above them (cli, store, report) pass :func:`derive` in. numpy loads on the
first row that has samples, not on import: the CLI imports this at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from hilobench.core.numfmt import few_samples_message
from hilobench.core.row import CI_MIN_SAMPLES, Status

#: The summary columns a row's samples decide (the keys of ``stats.summarize``).
STATS = (
    "n_samples", "throughput_median", "throughput_ci_low", "throughput_ci_high",
    "latency_ms_p50", "latency_ms_p90", "latency_ms_iqr", "cov", "noisy",
)  # fmt: skip


@lru_cache(maxsize=1024)
def _summary(samples: tuple[float, ...], batch: int) -> tuple[tuple[str, Any], ...]:
    """``stats.summarize`` of one measurement, kept: a table asks for each row's numbers once
    per column."""
    from hilobench.measure import stats  # numpy: only once a row with samples is shown

    return tuple(stats.summarize(samples, batch).items())


def summary(samples: Iterable[float], batch: int) -> dict[str, Any]:
    """The :data:`STATS` of per-layer call times ``samples`` of ``batch`` images each."""
    return dict(_summary(tuple(float(s) for s in samples), int(batch)))


def derive(row: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`STATS` a view shows for ``row``: from its samples and batch, else (no samples,
    or samples that are not positive finite times) the columns it stored, those it has."""
    samples, batch = row.get("samples_s"), row.get("batch")
    if isinstance(samples, list | tuple) and samples and isinstance(batch, int) and batch >= 1:
        try:
            return summary(samples, batch)
        except (TypeError, ValueError):  # not times: the row shows what it stored
            pass
    return {k: row[k] for k in STATS if k in row}


def shown(row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` as every view reads it: a copy whose :data:`STATS` are :func:`derive`'s."""
    return {**row, **derive(row)}


def shown_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """:func:`shown` of each row."""
    return [shown(r) for r in rows]


def field(row: Mapping[str, Any], name: str) -> Any:
    """One column of ``row`` as a view shows it: a statistic derived, any other as stored."""
    return derive(row).get(name) if name in STATS else row.get(name)


def measured_columns(
    samples: list[float], batch: int, longest_s: float, calls: int, budget_s: float
) -> dict[str, Any]:
    """The summary columns a fresh measurement stores beside its samples, and status
    ``few-samples`` with why (``longest_s``: the longest sample, of ``calls`` calls) when
    there are too few samples for a 95% interval."""
    cols: dict[str, Any] = summary(samples, batch)
    if len(samples) < CI_MIN_SAMPLES:
        cols["status"] = Status.FEW_SAMPLES
        cols["message"] = few_samples_message(len(samples), longest_s, calls, budget_s)
    return cols
