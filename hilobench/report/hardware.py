"""The cross-hardware table: models × machines, as the paper's table of other GPUs.

A row per measured thing (its name, with the settings that tell rows apart), a column per
machine class (one run directory each, e.g. one per SLURM partition) holding ``metric``, and,
given a reference, a column per machine with each row's ratio to the reference measured at
the same setting on that machine: a ratio survives the change of hardware better than a raw
speed, which is the paper's point in comparing LITv2 on other GPUs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hilobench.core.errors import ConfigError
from hilobench.core.frame import Frame
from hilobench.report.merge import merge_runs
from hilobench.report.run_rows import ReportedRun

#: Columns of the merged table that hold a setting (beside the name) and may tell rows apart.
_SETTINGS = ("kind", "impl", "mode", "res", "tokens", "batch", "dtype", "options", "device",
             "threads", "compile", "channels_last")  # fmt: skip


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def hardware_table(
    runs: list[ReportedRun], metric: str = "throughput_median", ref: str | None = None
) -> Frame:
    """``model`` (name and the settings that vary), then one column per machine with
    ``metric`` (a failed cell holds its status), then ``<machine> / <ref>`` ratios."""
    df = merge_runs(runs, metric)
    machines = [r.label for r in runs]
    machines = list(dict.fromkeys(machines))
    settings = [c for c in _SETTINGS if c in df.columns and len(set(df[c])) > 1]
    if ref is not None and ref not in set(df["name"]):
        names = ", ".join(sorted(set(df["name"])))
        raise ConfigError(f"--ref {ref!r} is not a measured name; names: {names}")

    def label(rec: dict[str, Any]) -> str:
        extra = " ".join(f"{c}={rec[c]}" for c in settings if c != "kind" and rec[c] != "")
        return f"{rec['name']} ({extra})" if extra else str(rec["name"])

    out = Frame(
        ({"model": label(r), **{m: r[m] for m in machines}} for r in df), ["model", *machines]
    )
    if ref is None:
        return out
    same = [c for c in settings if c != "options"]
    key = ["|".join(str(r[c]) for c in same) for r in df]
    for m in machines:
        base = {k: _number(v) for k, v, n in zip(key, df[m], df["name"], strict=True) if n == ref}
        ratios = []
        for k, v in zip(key, df[m], strict=True):
            num, den = _number(v), base.get(k)
            ratios.append(round(num / den, 3) if num is not None and den else None)
        out = out.with_column(f"{m} / {ref}", ratios)
    return out


def plot_hardware(
    table: Frame, path: Path, *, metric: str, ref: str | None
) -> dict[str, tuple[list[Any], list[float]]]:
    """Grouped bars, a group per model and a bar per machine: the ratios to ``ref`` when
    given (a line marks 1), else ``metric`` itself; returns what it drew."""
    from hilobench.report.plots import plot_bars

    cols = [c for c in table.columns if c != "model" and (c.endswith(f" / {ref}") == bool(ref))]
    series: dict[str, tuple[list[Any], list[float]]] = {}
    for c in cols:
        pts = [(m, _number(v)) for m, v in zip(table["model"], table[c], strict=True)]
        keep = [(m, v) for m, v in pts if v is not None]
        if keep:
            series[c] = ([m for m, _ in keep], [v for _, v in keep])
    if not series:
        raise ConfigError(f"nothing to plot: no machine has a numeric {metric!r}")
    ylabel = f"{metric} / {ref}'s" if ref else metric
    plot_bars(series, path, title="across machines", ylabel=ylabel, hline=1.0 if ref else None)
    return series
