"""Rows → what a person reads (rich table) or a program reads (json / csv / md), and the
consoles they are printed on. Text from rows is data: rich markup in it is escaped."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

FORMATS = ("table", "json", "csv", "md")


def console(*, stderr: bool = False, width: int = 220) -> Console:
    """A console of the terminal's width, or ``width`` columns when piped, so that a log keeps
    whole table rows instead of folding them to 80 columns."""
    c = Console(stderr=stderr)
    return c if c.is_terminal else Console(stderr=stderr, width=width)


def _num(v: Any, scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return fmt.format(v / scale)


def _mem(v: Any) -> str:
    return "-" if v is None else f"{v / 2**20:.1f}"


def rich_table(rows: list[dict[str, Any]], title: str = "") -> Table:
    """The terminal view: counts, speed with its 95% interval, memory, status."""
    table = Table(title=escape(title) or None, header_style="bold")
    layer_rows = all(r.get("kind") == "layer" for r in rows)
    wanted = ["name", "impl", "mode", "res", "tokens" if layer_rows else None, "batch", "dtype",
              "params (M)", "MMACs" if layer_rows else "GMACs", "traced", "img/s", "95% CI",
              "p50 ms", "p90 ms", "CoV", "roofline", "mem MB", "status"]  # fmt: skip
    cols = [c for c in wanted if c]
    for c in cols:
        table.add_column(c, justify="left" if c in ("name", "impl", "mode", "status") else "right")
    mscale = 1e6 if layer_rows else 1e9
    for r in rows:
        ci = (
            f"{r['throughput_ci_low']:.1f}–{r['throughput_ci_high']:.1f}"
            if r.get("throughput_ci_low") is not None
            else "-"
        )
        status = r.get("status", "")
        if status == "ok" and r.get("noisy"):
            status = "ok (noisy)"
        elif status not in ("ok", ""):
            status = f"[red]{escape(str(status))}[/red] {escape(str(r.get('message', ''))[:40])}"
        else:
            status = escape(str(status))
        cells = {
            "name": escape(str(r.get("name", ""))),
            "impl": escape(str(r.get("impl", ""))),
            "mode": escape(str(r.get("mode", ""))),
            "res": escape(str(r.get("res", ""))),
            "tokens": escape(str(r.get("tokens", ""))),
            "batch": escape(str(r.get("batch", ""))),
            "dtype": escape(str(r.get("dtype", ""))),
            "params (M)": _num(r.get("params"), 1e6),
            "MMACs": _num(r.get("macs"), mscale),
            "GMACs": _num(r.get("macs"), mscale, "{:.3f}"),
            "traced": _num(r.get("macs_traced"), mscale, "{:.3f}" if not layer_rows else "{:.2f}"),
            "img/s": _num(r.get("throughput_median"), 1, "{:.1f}"),
            "95% CI": ci,
            "p50 ms": _num(r.get("latency_ms_p50"), 1, "{:.2f}"),
            "p90 ms": _num(r.get("latency_ms_p90"), 1, "{:.2f}"),
            "CoV": _num(r.get("cov"), 0.01, "{:.1f}%"),
            "roofline": _num(r.get("roofline"), 0.01, "{:.1f}%"),
            "mem MB": _mem(r.get("peak_mem_bytes")),
            "status": status,
        }
        table.add_row(*(cells[c] for c in cols))
    return table


def render_text(rows: list[dict[str, Any]], fmt: str) -> str:
    """json: a list of row objects; csv / md: the flat results table."""
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str)
    # pandas takes a while to import: only csv / md need it, and the CLI imports this module
    from hilobench.store import table_frame, to_markdown

    df = table_frame(rows)
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "md":
        return to_markdown(df)
    raise ValueError(f"unknown format {fmt!r}")


def compare_groups_table(rows: list[dict[str, Any]]) -> Table | None:
    """Members of compare groups with their interleaved speed ratio to the reference; None when
    no row belongs to a group."""
    from hilobench.report.tables import compare_table  # pandas (~0.25 s): see render_text

    df = compare_table(rows)
    if df is None:
        return None
    table = Table(title="compare groups (interleaved; speed ratio to the reference)")
    for c in df.columns:
        table.add_column(str(c), justify="left" if c in ("group", "member", "setting") else "right")
    for rec in df.itertuples(index=False):
        table.add_row(*(_cell(v) for v in rec))
    return table


def _cell(v: Any) -> str:
    if v is None or v != v:  # None or NaN
        return ""
    return f"{v:.3f}" if isinstance(v, float) else escape(str(v))


def print_rows(rows: list[dict[str, Any]], fmt: str, title: str) -> None:
    """Rows on stdout: as tables (with the compare groups) or as json / csv / md text."""
    if fmt == "table":
        out = console()
        out.print(rich_table(rows, title))
        groups = compare_groups_table(rows)
        if groups is not None:
            out.print(groups)
    else:
        sys.stdout.write(render_text(rows, fmt) + "\n")
