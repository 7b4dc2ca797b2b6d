"""The terminal: consoles of the right width and the one style of every terminal table.

:func:`grid` is that style (rows, compare groups and verdicts, claims, profiles): numbers whole,
text folded; :func:`print_fitted` prints a table whole however narrow the terminal. Kept in core
so that every package that prints a table (gate, profile, cli) draws it alike without depending
on the command line.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

#: Narrowest a text column (a name, a status message) is folded to.
TEXT_MIN_WIDTH = 12


def console(*, stderr: bool = False, width: int = 220) -> Console:
    """A console of the terminal's width; when piped, ``COLUMNS`` if the environment sets it
    (rich itself honours it only on a terminal), else ``width`` columns, so that a log keeps
    whole table rows instead of folding them to 80 columns."""
    c = Console(stderr=stderr)
    if c.is_terminal:
        return c
    env = os.environ.get("COLUMNS", "").strip()
    return Console(stderr=stderr, width=int(env) if env.isdigit() and int(env) > 0 else width)


def grid(
    title: str,
    headers: Sequence[str],
    body: Sequence[Sequence[str]],
    text: Sequence[bool],
    *,
    markup: set[int] | None = None,
    row_styles: Sequence[str | None] | None = None,
    min_widths: dict[int, int] | None = None,
) -> Table:
    """Every terminal table's one style: numbers right-aligned at their full width (never
    wrapped, never cut), text left-aligned and folded no narrower than :data:`TEXT_MIN_WIDTH`
    (or ``min_widths``, by index). Cells are plain text (escaped here) except in the
    ``markup`` columns (by index), which hold markup already; ``row_styles``: one rich style
    (or None) per row."""
    table = Table(
        title=escape(title) or None,
        header_style="bold",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,  # two spaces between columns, not three: more fit in 100
    )
    marked = markup or set()

    def length(cell: str, i: int) -> int:
        return len(Text.from_markup(cell)) if i in marked else len(cell)

    for i, (header, is_text) in enumerate(zip(headers, text, strict=True)):
        widest = max([len(header)] + [length(r[i], i) for r in body])
        table.add_column(
            escape(header),
            justify="left" if is_text else "right",
            no_wrap=not is_text,
            min_width=max(min(widest, TEXT_MIN_WIDTH), (min_widths or {}).get(i, 0))
            if is_text
            else widest,
            overflow="fold" if is_text else "ellipsis",
        )
    for j, row in enumerate(body):
        shown = [c if i in marked else escape(c) for i, c in enumerate(row)]
        table.add_row(*shown, style=row_styles[j] if row_styles else None)
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


def print_fitted(out: Console, table: Table) -> None:
    """``table`` on ``out``; wider than the terminal, it is printed whole (the terminal wraps
    the lines) rather than cut."""
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
