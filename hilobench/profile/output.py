"""Breakdowns → what a person reads (rich tables, side by side for several cases) or a program
reads (json, csv, md). Rendering only: every number comes from :mod:`.breakdown`."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from rich.columns import Columns
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hilobench.core import numfmt as nf
from hilobench.core.terminal import grid, print_fitted
from hilobench.profile.breakdown import Breakdown, Part

VIEWS = ("modules", "kinds", "ops")
TITLES = {"modules": "by module", "kinds": "by kind", "ops": "by operator"}
CSV_FIELDS = (
    "case", "view", "part", "depth", "leaf", "forward_s", "backward_s", "time_s", "share",
    "macs", "params", "peak_mem_bytes", "macs_per_s", "device_s", "calls",
)  # fmt: skip


def summary(b: Breakdown) -> str:
    """One line: the measured step, the parts' sum and the residual against the tolerance."""
    verdict = "ok" if b.within_tolerance else "OUTSIDE the tolerance"
    return (
        f"{b.label}: step {nf.fixed(b.step_s * 1e3)} ms without the profiler (mean of "
        f"{len(b.step_samples)}, {b.threads} thread(s)); parts sum to "
        f"{nf.fixed(b.parts_sum_s * 1e3)} ms per profiled step (mean of {b.steps}, interleaved); "
        f"residual {nf.change(b.residual)} "
        f"(tolerance ±{nf.share(b.tolerance)}: {verdict})" + _kernels(b)
    )


def _kernels(b: Breakdown) -> str:
    """CUDA: how much of the profiled step the kernels fill (the device column's sum)."""
    if b.kernel_s is None or b.device_busy is None:
        return ""
    return (
        f"; kernels {nf.fixed(b.kernel_s * 1e3)} ms = {nf.percent(b.device_busy)} of the "
        "profiled step (the rest: launches, Python, synchronisation)"
    )


def _ms(v: float | None) -> str:
    """A time in ms (a mean of few profiled steps: 3 significant digits)."""
    return nf.measured(None if v is None else v * 1e3)


def _heads(train: bool, cuda: bool) -> list[str]:
    heads = ["part", "fwd ms"] + (["bwd ms"] if train else [])
    heads += ["ms", "share", "GMACs", "params (M)", "peak MiB", "GMAC/s"]
    return heads + (["cuda ms"] if cuda else [])


def _cells(p: Part, train: bool, cuda: bool) -> list[str]:
    """One part's plain-text cells, every number by :mod:`hilobench.core.numfmt`."""
    cells = [("  " * p.depth) + p.name, _ms(p.forward_s)]
    if train:
        cells.append(_ms(p.backward_s))
    cells += [
        _ms(p.time_s),
        nf.percent(p.share, 3),
        nf.count(p.macs, 1e9),
        nf.count(p.params, 1e6),
        nf.count(p.peak_mem_bytes, nf.MIB),
        nf.measured(None if p.macs_per_s is None else p.macs_per_s / 1e9),
    ]
    if cuda:
        cells.append(_ms(p.device_s))
    return cells


def table(b: Breakdown, view: str) -> Table:
    """One view of one case in the style of every table (:func:`hilobench.core.terminal.grid`); leaf
    rows (the ones that sum) in plain text, rows that hold others dimmed."""
    train, cuda = b.mode == "train", b.device.startswith("cuda")
    heads = _heads(train, cuda)
    parts = getattr(b, view)
    body = [_cells(p, train, cuda) for p in parts]
    styles = [None if p.leaf else "dim" for p in parts]
    text = [h == "part" for h in heads]
    return grid(f"{b.label} — {TITLES[view]}", heads, body, text, row_styles=styles)


def print_tables(out: Console, breakdowns: Sequence[Breakdown], views: Sequence[str]) -> None:
    """Each view, the cases side by side, then one summary line per case."""
    for view in views:
        tables = [table(b, view) for b in breakdowns]
        if len(tables) > 1:
            out.print(Columns(tables))
        else:
            print_fitted(out, tables[0])
    for b in breakdowns:
        out.print(escape(summary(b)), highlight=False, soft_wrap=True)


def _rows(b: Breakdown, views: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for view in views:
        for p in getattr(b, view):
            out.append(
                {"case": b.label, "view": view, "part": p.name, "depth": p.depth, "leaf": p.leaf,
                 "forward_s": p.forward_s, "backward_s": p.backward_s, "time_s": p.time_s,
                 "share": p.share, "macs": p.macs, "params": p.params,
                 "peak_mem_bytes": p.peak_mem_bytes, "macs_per_s": p.macs_per_s,
                 "device_s": p.device_s, "calls": p.calls}
            )  # fmt: skip
    return out


def render(breakdowns: Sequence[Breakdown], fmt: str, views: Sequence[str] = VIEWS) -> str:
    """``json``: a list of breakdown objects; ``csv``: one line per part and view; ``md``: a
    summary line and one table per view for each case."""
    if fmt == "json":
        return json.dumps([b.to_json() for b in breakdowns], indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
        w.writeheader()
        for b in breakdowns:
            w.writerows(_rows(b, views))
        return buf.getvalue()
    if fmt == "md":
        return "\n".join(_markdown(b, views) for b in breakdowns)
    raise ValueError(f"unknown format {fmt!r}")


def _markdown(b: Breakdown, views: Sequence[str]) -> str:
    train, cuda = b.mode == "train", b.device.startswith("cuda")
    heads = _heads(train, cuda)
    lines = [f"### {b.label}", "", summary(b), ""]
    for view in views:
        lines += [f"**{TITLES[view]}**", "", "| " + " | ".join(heads) + " |"]
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(heads) - 1)) + "|")
        for p in getattr(b, view):
            cells = _cells(p, train, cuda)
            cells[0] = ("&nbsp;&nbsp;" * p.depth) + p.name.replace("|", "\\|")
            if not p.leaf:
                cells[0] = f"*{cells[0]}*"
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
