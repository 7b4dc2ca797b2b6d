"""Rows → plot series: what each figure draws, as ``name → (x, y)``, so tests check data, not
pixels. One series per attention (or model) and the settings that vary between rows."""

from __future__ import annotations

import math
from typing import Any

from hilobench.report.rows import hw_or_none, ok_rows, scale_label, subject

Series = dict[str, tuple[list[Any], list[float]]]

#: Row fields that tell series apart when they vary (``_run`` is the run's name: two runs are
#: two series, even of one machine).
QUALIFIERS = ("impl", "mode", "batch", "dtype", "device", "backend", "_run")


def image_side(res: Any) -> float:
    """Image side for plotting: N for N×N, √(H·W) otherwise."""
    hw = hw_or_none(res) or (0, 0)
    return hw[0] if hw[0] == hw[1] else round(math.sqrt(hw[0] * hw[1]), 1)


def series_name(row: dict[str, Any], varying: set[str]) -> str:
    """The legend entry of a row: its subject plus the ``varying`` settings."""
    parts = [subject(row)]
    if "_scale" in varying and scale_label(row):
        parts.append(f"@{scale_label(row)}")
    for q in QUALIFIERS:
        if q in varying:
            v = row.get(q)
            parts.append(f"b{v}" if q == "batch" else str(v))
    return " ".join(parts)


def varying_fields(rows: list[dict[str, Any]]) -> set[str]:
    """The qualifiers (and ``_scale``) that take more than one value across ``rows``."""
    out = {q for q in QUALIFIERS if len({str(r.get(q)) for r in rows}) > 1}
    if len({scale_label(r) for r in rows}) > 1:
        out.add("_scale")
    return out


def series_vs_res(rows: list[dict[str, Any]], metric: str = "throughput_median") -> Series:
    """One series per attention (or model) and setting: ``metric`` against the image side.

    ``peak_mem_bytes`` is reported in MiB. Only rows that measured fine take part; a point
    lost to OOM is missing from its line (the report lists such rows separately).
    """
    ok = [r for r in ok_rows(rows) if r.get(metric) is not None]
    varying = varying_fields(ok)
    scale = 2**20 if metric == "peak_mem_bytes" else 1
    pts: dict[str, dict[float, float]] = {}
    for r in ok:
        pts.setdefault(series_name(r, varying), {})[image_side(r.get("res"))] = r[metric] / scale
    return {k: (sorted(v), [v[x] for x in sorted(v)]) for k, v in sorted(pts.items())}


def series_macs_vs_tokens(rows: list[dict[str, Any]]) -> Series:
    """Analytic MACs of each attention layer against its number of tokens (counts exist even
    where timing ran out of memory)."""
    pts: dict[str, dict[int, float]] = {}
    for r in rows:
        tok = hw_or_none(r.get("tokens"))
        if r.get("kind") != "layer" or not tok or r.get("macs") is None:
            continue
        pts.setdefault(subject(r), {})[tok[0] * tok[1]] = float(r["macs"])
    return {k: (sorted(v), [v[x] for x in sorted(v)]) for k, v in sorted(pts.items())}


def series_latency_throughput(
    rows: list[dict[str, Any]],
) -> dict[str, tuple[list[float], list[float], list[int]]]:
    """One line per subject (and setting) measured at two or more batch sizes: median
    throughput (img/s) as x, median latency of one call on the batch (ms) as y, and the
    batches, in batch order. Subjects measured at one batch only are left out."""
    ok = [r for r in ok_rows(rows) if r.get("latency_ms_p50") is not None]
    varying = varying_fields(ok) - {"batch"}
    by_res = len({str(r.get("res")) for r in ok}) > 1
    pts: dict[str, dict[int, tuple[float, float]]] = {}
    for r in ok:
        name = series_name(r, varying) + (f" @{r.get('res')}" if by_res else "")
        pts.setdefault(name, {})[int(r["batch"])] = (
            float(r["throughput_median"]),
            float(r["latency_ms_p50"]),
        )
    out = {}
    for name, by_batch in sorted(pts.items()):
        if len(by_batch) < 2:
            continue
        batches = sorted(by_batch)
        out[name] = ([by_batch[b][0] for b in batches], [by_batch[b][1] for b in batches], batches)
    return out
