"""Rows → what a person reads (rich table) or a program reads (json / csv / md). The table is
drawn in :func:`hilobench.core.terminal.grid`, every terminal table's one style. The cells come
from :mod:`hilobench.core.columns` as plain text; text from rows is data: rich markup in it is
escaped."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hilobench.core import numfmt as nf
from hilobench.core.columns import (
    BY_NAME,
    WIDE,
    cells,
    default_columns,
)
from hilobench.core.columns import COLUMNS as COLUMNS  # what --columns lists
from hilobench.core.columns import rows_markdown as columns_markdown
from hilobench.core.errors import ConfigError, unknown
from hilobench.core.terminal import console, fits, grid, print_fitted
from hilobench.measure.rowstats import derive, shown

FORMATS = ("table", "json", "csv", "md")


#: The default columns given up first when the terminal is too narrow, in that order.
DROP_ORDER = (
    "limit", "p50", "ci", "macs", "precision", "backend", "dtype", "mode", "impl", "res",
    "tokens", "batch", "mem", "n",
)  # fmt: skip
#: Colours of the statuses that are not plainly ``ok``.
STATUS_STYLE = {
    "few-samples": "yellow",
    "partial": "yellow",
    "OOM": "red",
    "error": "red",
    "mismatch": "red",
    "unsupported": "red",
}


COLUMNS_HELP = "Table columns to show, comma separated (a bad name lists them all)."
WIDE_HELP = "Show every table column (the default shows what fits 100 columns)."


def parse_columns(text: str) -> list[str]:
    """``--columns name,img_s,mem`` → those column names; ConfigError listing the allowed
    names for one that is not a column."""
    names = [p.strip() for p in text.split(",") if p.strip()] or [text]
    for n in names:
        if n not in BY_NAME:
            raise unknown("column", n, BY_NAME)
    return list(dict.fromkeys(names))


def choose_columns(columns: str | None, wide: bool) -> list[str] | None:
    """The ``--columns`` / ``--wide`` choice: a list of column names, or None for the default
    view. Both at once is refused."""
    if columns is not None and wide:
        raise ConfigError("--wide shows every column; give it or --columns, not both")
    if wide:
        return list(WIDE)
    return parse_columns(columns) if columns is not None else None


def rich_table(
    rows: list[dict[str, Any]],
    title: str = "",
    columns: list[str] | None = None,
    *,
    width: int | None = None,
) -> Table:
    """The terminal view of ``rows``. ``columns``: exactly those columns; None: the default
    ones, where a setting every row shares moves to the title, and columns are given up in
    :data:`DROP_ORDER` until the table fits ``width`` (when given) without cutting a number."""
    if columns is not None:
        return _table(rows, title, columns)
    chosen, notes = default_columns(rows, derive)
    full_title = " · ".join(p for p in [title, *notes] if p)
    table = _table(rows, full_title, chosen)
    for drop in DROP_ORDER if width is not None else ():
        if fits(table, width or 0):
            break
        chosen = [c for c in chosen if c != drop]
        table = _table(rows, full_title, chosen)
    return table


def _table(rows: list[dict[str, Any]], title: str, columns: list[str]) -> Table:
    heads, body, text = cells(rows, columns, derive)
    styles, least = [], {}
    if "status" in columns:
        statuses = [nf.status(shown(r)) for r in rows]  # few-samples and noisy: derived
        styles = [STATUS_STYLE.get(st.split(" ")[0], "") for st in statuses]
        i = columns.index("status")
        for row, style in zip(body, styles, strict=True):
            row[i] = f"[{style}]{escape(row[i])}[/{style}]" if style else escape(row[i])
        least[i] = max((len(st) for st in statuses), default=0)  # stays whole
    marked = {columns.index("status")} if styles else None
    return grid(title, heads, body, text, markup=marked, min_widths=least)


def print_table(
    out: Console,
    rows: list[dict[str, Any]],
    title: str,
    columns: list[str] | None = None,
) -> None:
    """``rows`` on ``out``: the default columns fitted to its width, or the ``columns`` asked
    for at their full width (a line longer than the terminal wraps there; no number is cut)."""
    print_fitted(out, rich_table(rows, title, columns, width=out.width))


def rows_markdown(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """``rows`` in Markdown: the table's columns (:func:`hilobench.core.columns.rows_markdown`), or
    every raw field for the ``--wide`` choice."""
    if columns is not None and tuple(columns) == WIDE:
        from hilobench.store.writer import table_frame, to_markdown

        return to_markdown(table_frame(rows))
    return columns_markdown(rows, derive, columns)


def render_text(rows: list[dict[str, Any]], fmt: str, columns: list[str] | None = None) -> str:
    """json: a list of row objects; csv: the flat results table (every field, full precision);
    md: the table's columns (``columns`` as :func:`print_table` takes them)."""
    if fmt == "json":  # every field, the statistics as every other format shows them
        return json.dumps([shown(r) for r in rows], indent=2, default=str)
    if fmt == "md":
        return rows_markdown(rows, columns)
    from hilobench.store.writer import table_frame

    if fmt == "csv":
        return table_frame(rows).to_csv()
    raise ValueError(f"unknown format {fmt!r}")


def compare_groups_table(rows: list[dict[str, Any]]) -> Table | None:
    """Members of compare groups with their interleaved speed ratio to the reference; None when
    no row belongs to a group."""
    from hilobench.report.tables import group_cells

    made = group_cells(rows)
    if made is None:
        return None
    notes, heads, body, text = made
    title = " · ".join(["compare groups (interleaved; speed ratio to the reference)", *notes])
    return grid(title, heads, body, text)


def print_rows(
    rows: list[dict[str, Any]], fmt: str, title: str, columns: list[str] | None = None
) -> None:
    """Rows on stdout: as tables (with the compare groups) or as json / csv / md text;
    ``columns`` as :func:`print_table` takes them."""
    if fmt == "table":
        out = console()
        print_table(out, rows, title, columns)
        groups = compare_groups_table(rows)
        if groups is not None:
            print_fitted(out, groups)
    else:
        sys.stdout.write(render_text(rows, fmt, columns) + "\n")
