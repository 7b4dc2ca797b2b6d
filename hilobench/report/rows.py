"""Row accessors every report view shares: which rows measured fine (with the statistics
:mod:`hilobench.measure.rowstats` derives from their samples), what a row measures, its token
grid and layer scale, and numbers in the unit a table shows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hilobench.core.row import is_measured
from hilobench.measure.rowstats import shown


def ok_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows that measured (``ok`` or ``few-samples``) and have a throughput, as views show
    them: their statistics derived from their samples (:mod:`hilobench.measure.rowstats`)."""
    seen = (shown(r) for r in rows)
    return [r for r in seen if is_measured(r) and r.get("throughput_median")]


def hw_or_none(text: Any) -> tuple[int, int] | None:
    """``"HxW"`` (or ``"N"``) as (H, W); None when empty or not numbers."""
    if text in (None, ""):
        return None
    parts = str(text).lower().split("x")
    try:
        return (int(parts[0]), int(parts[-1]))
    except ValueError:
        return None


def subject(row: dict[str, Any]) -> str:
    """What a row measured: the attention of a layer row, the model of a backbone row."""
    return (
        str(row.get("attention") or row.get("name"))
        if row.get("kind") == "layer"
        else str(row.get("name"))
    )


def scale_label(row: dict[str, Any]) -> str:
    """The token map's scale of a layer row (``1/16``); empty for models or unknown shapes."""
    res, tok = hw_or_none(row.get("res")), hw_or_none(row.get("tokens"))
    if row.get("kind") != "layer" or not res or not tok or not tok[0]:
        return ""
    return f"1/{round(res[0] / tok[0])}"


def div(v: Any, d: float) -> float | None:
    """``v / d`` as a float; None stays None."""
    return None if v is None else float(v) / d
