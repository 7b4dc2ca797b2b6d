"""Who a row is: its label, its suite case id, and the setting two rows must share to be
compared. A leaf (it reads rows, never runs), so judging and loading can both use it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hilobench.core.case import Case

#: Case fields that pair two rows of one setting (the suite's compare-group setting).
CLAIM_PAIR_COLUMNS = (
    "kind", "res", "batch", "device", "dtype", "impl", "mode", "threads", "compile",
    "backend", "channels_last",
)  # fmt: skip


def row_label(row: Mapping[str, Any]) -> str:
    """Short human label of a row (``hilo/fused 224 b16 float32 infer``)."""
    if row.get("label"):
        return str(row["label"])
    case = row.get("case")
    if isinstance(case, dict):
        try:
            return Case.from_json(case).label()
        except Exception:  # an old or foreign row: fall back to its columns
            pass
    parts = [f"{row.get('name', '?')}/{row.get('impl', '?')}", str(row.get("res", ""))]
    if row.get("batch") is not None:
        parts.append(f"b{row['batch']}")
    return " ".join(p for p in parts if p)


def row_id(row: Mapping[str, Any]) -> str:
    """The suite case id of a row (its name when it came from no suite)."""
    return str(row.get("id") or row.get("case_id") or row.get("name") or "")


def row_context(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The setting two rows must share to be compared in a claim: every case field but the
    name and the options, plus the token map (as the suite's compare groups define it)."""
    case = row.get("case")
    if isinstance(case, Mapping):
        opts = case.get("options") or {}
        values = [case.get(f) for f in CLAIM_PAIR_COLUMNS]  # a JSON list (res) as a tuple
        return tuple(tuple(v) if isinstance(v, list) else v for v in values) + (opts.get("tokens"),)
    return tuple(row.get(f) for f in CLAIM_PAIR_COLUMNS) + (row.get("tokens"),)
