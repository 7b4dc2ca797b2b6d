"""Rows → plot series: what each figure draws, as ``name → (x, y)``, so tests check data, not
pixels. One series per attention (or model) and the settings that vary between rows."""

from __future__ import annotations

import math
from typing import Any

from hilobench.report.rows import hw_or_none, ok_rows, scale_label, subject

Series = dict[str, tuple[list[Any], list[float]]]

#: Row fields that tell series apart when they vary (``_env`` is the machine-class label).
QUALIFIERS = ("impl", "mode", "batch", "dtype", "device", "_env")


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
