"""The cross-machine table: a row per measured thing, a column per environment (like the
paper's table of GPUs)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from hilobench.report.runs import ReportedRun


def merge_runs(runs: list[ReportedRun], metric: str = "throughput_median") -> pd.DataFrame:
    """One table across machines: a row per measured thing, a column per environment. Failed
    cells hold their status; a case measured twice on one machine keeps its latest successful
    row."""
    key_cols = ["kind", "name", "impl", "mode", "res", "tokens", "batch", "dtype"]
    cells: dict[tuple[Any, ...], dict[str, Any]] = {}
    order: list[str] = []
    for run in runs:
        if run.label not in order:
            order.append(run.label)
        for r in run.rows:
            opts = r.get("options") or {}
            extra = ",".join(f"{k}={v}" for k, v in sorted(opts.items()) if k != "tokens")
            key = tuple(str(r.get(c, "")) for c in key_cols) + (extra,)
            rec = cells.setdefault(key, {})
            value = r.get(metric) if r.get("status") == "ok" else r.get("status")
            if r.get("status") == "ok" or run.label not in rec:
                rec[run.label] = value
    data = [dict(zip([*key_cols, "options"], k, strict=True), **v) for k, v in cells.items()]
    df = pd.DataFrame(data, columns=[*key_cols, "options", *order])
    if (df["options"] == "").all():
        df = df.drop(columns=["options"])
    return df
