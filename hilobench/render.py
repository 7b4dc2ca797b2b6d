"""Rows → what a person reads (rich table) or a program reads (json / csv / md), and the
consoles they are printed on. Text from rows is data: rich markup in it is escaped."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from hilobench.errors import ConfigError

FORMATS = ("table", "json", "csv", "md")


def console(*, stderr: bool = False, width: int = 220) -> Console:
    """A console of the terminal's width; when piped, ``COLUMNS`` if the environment sets it
    (rich itself honours it only on a terminal), else ``width`` columns, so that a log keeps
    whole table rows instead of folding them to 80 columns."""
    c = Console(stderr=stderr)
    if c.is_terminal:
        return c
    env = os.environ.get("COLUMNS", "").strip()
    return Console(stderr=stderr, width=int(env) if env.isdigit() and int(env) > 0 else width)


def _num(v: Any, scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return fmt.format(v / scale)


def _mem(v: Any) -> str:
    return "-" if v is None else f"{v / 2**20:.1f}"


def _ci(r: dict[str, Any]) -> str:
    if r.get("throughput_ci_low") is None:
        return "-"
    return f"{r['throughput_ci_low']:.1f}–{r['throughput_ci_high']:.1f}"


def _status(r: dict[str, Any]) -> str:
    status = r.get("status", "")
    if status == "ok" and r.get("noisy"):
        return "ok (noisy)"
    if status not in ("ok", ""):
        return f"[red]{escape(str(status))}[/red] {escape(str(r.get('message', ''))[:40])}"
    return escape(str(status))


def _text(field: str) -> Callable[[dict[str, Any], bool], str]:
    return lambda r, layers: escape(str(r.get(field, "")))


def _macs(field: str) -> Callable[[dict[str, Any], bool], str]:
    def cell(r: dict[str, Any], layers: bool) -> str:
        return _num(r.get(field), 1e6, "{:.2f}") if layers else _num(r.get(field), 1e9, "{:.3f}")

    return cell


@dataclass(frozen=True)
class Column:
    """One column of the terminal table: its ``--columns`` name, its header (``{macs}`` is
    MMACs for layers, GMACs for backbones), its cell, and whether it holds text (which may
    wrap) or numbers (which never wrap and are never cut)."""

    name: str
    header: str
    cell: Callable[[dict[str, Any], bool], str]
    text: bool = False
    #: a setting: when every row has the same value, the default table names it in the title
    setting: bool = False


#: Every column of the terminal table, in display order (``--wide`` shows them all).
COLUMNS: tuple[Column, ...] = (
    Column("name", "name", _text("name"), text=True),
    Column("impl", "impl", _text("impl"), text=True, setting=True),
    Column("mode", "mode", _text("mode"), text=True, setting=True),
    Column("res", "res", _text("res"), setting=True),
    Column("tokens", "tokens", _text("tokens"), setting=True),
    Column("batch", "batch", _text("batch"), setting=True),
    Column("dtype", "dtype", _text("dtype"), text=True, setting=True),
    Column("backend", "backend", _text("backend"), text=True, setting=True),
    Column("params", "params (M)", lambda r, _: _num(r.get("params"), 1e6)),
    Column("macs", "{macs}", _macs("macs")),
    Column("traced", "traced {macs}", _macs("macs_traced")),
    Column("img_s", "img/s", lambda r, _: _num(r.get("throughput_median"), 1, "{:.1f}")),
    Column("ci", "95% CI", lambda r, _: _ci(r)),
    Column("p50", "p50 ms", lambda r, _: _num(r.get("latency_ms_p50"), 1, "{:.2f}")),
    Column("p90", "p90 ms", lambda r, _: _num(r.get("latency_ms_p90"), 1, "{:.2f}")),
    Column("cov", "CoV", lambda r, _: _num(r.get("cov"), 0.01, "{:.1f}%")),
    Column("roofline", "roofline", lambda r, _: _num(r.get("roofline"), 0.01, "{:.1f}%")),
    Column("mem", "mem MiB", lambda r, _: _mem(r.get("peak_mem_bytes"))),
    Column("max_batch", "max batch", lambda r, _: _num(r.get("max_batch"), 1, "{:.0f}")),
    Column("limit", "limit MiB", lambda r, _: _mem(r.get("mem_limit_bytes"))),
    Column("status", "status", lambda r, _: _status(r), text=True),
)
_BY_NAME = {c.name: c for c in COLUMNS}
#: What a reader needs first, fitting 100 terminal columns.
DEFAULT_COLUMNS = (
    "name", "impl", "mode", "res", "tokens", "batch", "dtype", "backend", "macs", "img_s", "ci",
    "p50", "mem", "max_batch", "limit", "status",
)  # fmt: skip
#: Narrowest a text column (a name, a status message) is folded to.
TEXT_MIN_WIDTH = 12
#: The default columns given up first when the terminal is too narrow, in that order.
DROP_ORDER = (
    "limit", "p50", "ci", "macs", "dtype", "mode", "impl", "res", "tokens", "batch", "mem",
)  # fmt: skip


COLUMNS_HELP = "Table columns to show, comma separated (a bad name lists them all)."
WIDE_HELP = "Show every table column (the default shows what fits 100 columns)."


def parse_columns(text: str) -> list[str]:
    """``--columns name,img_s,mem`` → those column names; ConfigError listing the allowed
    names for one that is not a column."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    bad = [n for n in names if n not in _BY_NAME]
    if bad or not names:
        raise ConfigError(
            f"unknown column {(bad or [text])[0]!r}; choose from: {', '.join(_BY_NAME)}"
        )
    return list(dict.fromkeys(names))


def choose_columns(columns: str | None, wide: bool) -> list[str] | None:
    """The ``--columns`` / ``--wide`` choice: a list of column names, or None for the default
    view. Both at once is refused."""
    if columns is not None and wide:
        raise ConfigError("--wide shows every column; give it or --columns, not both")
    if wide:
        return [c.name for c in COLUMNS]
    return parse_columns(columns) if columns is not None else None


def _constant(rows: list[dict[str, Any]], col: Column) -> bool:
    return col.setting and len({str(r.get(col.name, "")) for r in rows}) == 1


def _relevant(rows: list[dict[str, Any]], name: str) -> bool:
    """A column that says something for these rows (``tokens`` only for layers, the
    max-batch columns only where a search ran)."""
    if name == "tokens":
        return all(r.get("kind") == "layer" for r in rows)
    if name == "backend":  # only where a runtime ran: eager tables stay as they were
        return any(r.get("backend", "eager") != "eager" for r in rows)
    if name in ("max_batch", "limit"):
        return any(r.get("max_batch") is not None for r in rows)
    if name in ("img_s", "ci", "p50"):  # a max-batch search times nothing
        return any(r.get("throughput_median") is not None for r in rows) or not rows
    return True


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
    layers = all(r.get("kind") == "layer" for r in rows)
    if columns is not None:
        return _table(rows, title, [_BY_NAME[c] for c in columns], layers)
    chosen = [_BY_NAME[c] for c in DEFAULT_COLUMNS if _relevant(rows, c)]
    shared = [c for c in chosen if _constant(rows, c)] if rows else []
    chosen = [c for c in chosen if c not in shared]
    notes = [_shared_label(c, rows[0]) for c in shared if str(rows[0].get(c.name, ""))]
    full_title = " · ".join(p for p in [title, *notes] if p)
    table = _table(rows, full_title, chosen, layers)
    for drop in DROP_ORDER if width is not None else ():
        if fits(table, width or 0):
            break
        chosen = [c for c in chosen if c.name != drop]
        table = _table(rows, full_title, chosen, layers)
    return table


def _shared_label(col: Column, row: dict[str, Any]) -> str:
    v = str(row.get(col.name, ""))
    return {"batch": f"batch {v}", "tokens": f"tokens {v}", "res": f"res {v}"}.get(col.name, v)


def _table(rows: list[dict[str, Any]], title: str, cols: list[Column], layers: bool) -> Table:
    table = Table(title=escape(title) or None, header_style="bold", box=box.SIMPLE_HEAD)
    cells = [[c.cell(r, layers) for c in cols] for r in rows]
    for i, c in enumerate(cols):
        header = c.header.format(macs="MMACs" if layers else "GMACs")
        widest = max([len(header)] + [len(Text.from_markup(row[i])) for row in cells])
        table.add_column(
            header,
            justify="left" if c.text else "right",
            no_wrap=not c.text,
            # numbers at their full width; text may fold, but never below a readable width
            min_width=min(widest, TEXT_MIN_WIDTH) if c.text else widest,
            overflow="fold" if c.text else "ellipsis",
        )
    for row in cells:
        table.add_row(*row)
    return table


def fits(table: Table, width: int) -> bool:
    """Whether ``table`` renders in ``width`` columns with every number whole: rich cuts a
    number that does not fit with an ellipsis, or lays the table out wider than asked when
    the numbers' widths alone exceed it, so neither may happen."""
    text = render_to_text(table, width)
    return "…" not in text and all(len(line) <= width for line in text.splitlines())


def render_to_text(table: Table, width: int) -> str:
    """``table`` as plain text at ``width`` columns (what a terminal of that width shows)."""
    c = Console(width=width, file=io.StringIO(), color_system=None, legacy_windows=False)
    c.print(table, crop=False)
    return c.file.getvalue()  # type: ignore[attr-defined]


def print_table(
    out: Console,
    rows: list[dict[str, Any]],
    title: str,
    columns: list[str] | None = None,
) -> None:
    """``rows`` on ``out``: the default columns fitted to its width, or the ``columns`` asked
    for at their full width (a line longer than the terminal wraps there; no number is cut)."""
    table = rich_table(rows, title, columns, width=out.width)
    if fits(table, out.width):
        out.print(table)
    else:
        need = Console(width=10_000, file=io.StringIO()).measure(table).maximum
        width = out.width
        out.width = max(need, width)  # print() crops at the console's width: widen it
        try:
            out.print(table)
        finally:
            out.width = width


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
            out.print(groups)
    else:
        sys.stdout.write(render_text(rows, fmt) + "\n")
