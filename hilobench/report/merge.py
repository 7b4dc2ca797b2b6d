"""The cross-machine table: a row per measured thing, a column per environment (like the
paper's table of GPUs)."""

from __future__ import annotations

import json
from typing import Any

from hilobench.core.frame import Frame
from hilobench.core.row import is_measured
from hilobench.measure.rowstats import field
from hilobench.report.run_rows import ReportedRun

#: Case fields that keep rows apart but are shown only when the merged rows differ in them.
_SHOWN_IF_MIXED = ("device", "threads", "compile", "channels_last")

#: Identity columns of a row (as hilobench.run.engine.base_row writes them).
_IDENTITY = ("kind", "name", "impl", "mode", "res", "tokens", "batch", "device", "dtype",
             "threads", "compile", "channels_last", "options")  # fmt: skip


def _case_identity(row: dict[str, Any]) -> tuple[Any, ...]:
    """What keeps two rows apart: the case key (every field of the Case, see
    :meth:`hilobench.core.case.Case.identity`), or for a row without one its recorded identity."""
    if row.get("case_key"):
        return ("key", str(row["case_key"]))
    case = row.get("case")
    if isinstance(case, dict) and case:
        return ("case", json.dumps(case, sort_keys=True, default=str))
    return ("row", json.dumps({k: row.get(k) for k in _IDENTITY}, sort_keys=True, default=str))


def merge_runs(runs: list[ReportedRun], metric: str = "throughput_median") -> Frame:
    """One table across machines: a row per measured thing, a column per environment. Failed
    cells hold their status; a case measured twice on one machine keeps its latest successful
    row. A statistic (``throughput_median``, ...) is derived from the row's samples."""
    key_cols = ["kind", "name", "impl", "mode", "res", "tokens", "batch", "dtype"]
    cells: dict[tuple[Any, ...], dict[str, Any]] = {}
    shown: dict[tuple[Any, ...], dict[str, Any]] = {}
    order: list[str] = []
    for run in runs:
        if run.label not in order:
            order.append(run.label)
        for r in run.rows:
            key = _case_identity(r)
            opts = r.get("options")
            opts = opts if isinstance(opts, dict) else {}
            extra = ",".join(f"{k}={v}" for k, v in sorted(opts.items()) if k != "tokens")
            shown.setdefault(key, {c: str(r.get(c, "")) for c in [*key_cols, *_SHOWN_IF_MIXED]})
            shown[key]["options"] = extra
            rec = cells.setdefault(key, {})
            value = field(r, metric) if is_measured(r) else r.get("status")
            if is_measured(r) or run.label not in rec:
                rec[run.label] = value
    data = [dict(shown[k], **v) for k, v in cells.items()]
    mixed = [c for c in _SHOWN_IF_MIXED if len({d[c] for d in data}) > 1]
    key_cols += mixed
    df = Frame(data, [*key_cols, "options", *order])
    if all(v == "" for v in df["options"]):
        df = df.drop("options")
    return df
