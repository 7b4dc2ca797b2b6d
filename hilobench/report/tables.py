"""Rows → the report's tables: the per-row results (the terminal table's columns), the compare
groups' ratios, and Markdown. Every number is written by :mod:`hilobench.core.numfmt`."""

from __future__ import annotations

from typing import Any

from hilobench.core import numfmt as nf
from hilobench.core.columns import DEFAULT_COLUMNS, cells, markdown
from hilobench.core.frame import Frame
from hilobench.measure.rowstats import derive, shown


def fmt_cell(v: Any) -> str:
    """Any cell of a report table as text (:func:`hilobench.core.numfmt.plain`)."""
    return nf.plain(v)


def markdown_table(df: Frame) -> str:
    """``df`` as Markdown, numbers through :func:`fmt_cell`; a column of figures (numbers, or
    cells already written as figures: ``1.2``, ``n=3 · 1–2``, ``—``) is right-aligned."""
    columns = [str(c) for c in df.columns]
    body = [[fmt_cell(v) for v in rec.values()] for rec in df]
    text = [not all(_figure(rec[i]) for rec in body) or not body for i in range(len(columns))]
    return markdown(columns, body, text)


def _figure(cell: str) -> bool:
    """Whether a written cell holds a figure (or nothing)."""
    return not cell or cell[0] in "0123456789-+—" or cell.startswith("n=")


def results_table(rows: list[dict[str, Any]]) -> Frame:
    """The per-row table of a run: the terminal table's default columns and cells (the
    max-batch columns only where a search ran, ``tokens`` only for layers)."""
    columns = [c for c in DEFAULT_COLUMNS if _shown(rows, c)]
    heads, body, _ = cells(rows, columns, derive)
    return _frame(heads, body)


def _shown(rows: list[dict[str, Any]], name: str) -> bool:
    if name == "tokens":
        return all(r.get("kind") == "layer" for r in rows) and any(r.get("tokens") for r in rows)
    if name in ("max_batch", "limit"):
        return any(r.get("max_batch") is not None for r in rows)
    return True


GROUP_HEADERS = ("group", "setting", "member", "x ref", "{ci}", "rounds", "faster", "status")
_GROUP_TEXT = ("group", "setting", "member", "status")


def group_cells(
    rows: list[dict[str, Any]], *, fold: bool = True
) -> tuple[list[str], list[str], list[list[str]], list[bool]] | None:
    """Members of compare groups with their per-round speed ratio to the reference (marked
    ``(ref)``), as title notes, headers, plain-text cells and text-ness. ``fold``: a group or
    setting every member shares moves to the notes, so the table fits a terminal. None when no
    row belongs to a group."""
    members = [r for r in rows if r.get("group")]
    if not members:
        return None
    recs = []
    for r in members:
        setting = f"{r.get('res')} {r.get('tokens') or ''} b{r.get('batch')} {r.get('impl')} "
        lo, hi, n = r.get("ratio_ci_low"), r.get("ratio_ci_high"), r.get("ratio_n")
        member = str(r.get("case_id") or r.get("name") or "")
        ref = (  # its ratio is 1 by definition
            r.get("ref_key") == r.get("case_key")
            if r.get("ref_key")
            else bool(r.get("ref")) and r.get("ref") == member
        )
        if r.get("backend") not in (None, "eager"):  # a group may interleave backends
            member += f" {r['backend']}"
        recs.append(
            [
                str(r["group"]),
                " ".join((setting + str(r.get("mode"))).split()),
                member + (" (ref)" if ref else ""),
                "1x" if ref else nf.ratio(r.get("ratio_to_ref"), lo, hi),
                nf.EMPTY if ref else nf.interval(lo, hi, n),
                nf.integer(n),
                nf.percent(r.get("ratio_frac_faster")),
                nf.status(shown(r)),
            ]
        )
    ci = nf.interval_header([r.get("ratio_n") for r in members if r.get("ratio_ci_low")])
    heads = [h.format(ci=ci) for h in GROUP_HEADERS]
    keep = list(range(len(heads)))
    notes = []
    for i in (0, 1) if fold else ():  # group, setting
        if len({rec[i] for rec in recs}) == 1:
            notes.append(recs[0][i])
            keep.remove(i)
    return (
        notes,
        [heads[i] for i in keep],
        [[rec[i] for i in keep] for rec in recs],
        [GROUP_HEADERS[i] in _GROUP_TEXT for i in keep],
    )


def compare_table(rows: list[dict[str, Any]]) -> Frame | None:
    """Members of compare groups with their per-round speed ratio to the reference, every
    column kept (the report's view of :func:`group_cells`)."""
    made = group_cells(rows, fold=False)
    if made is None:
        return None
    _, heads, body, _ = made
    return _frame(heads, body)


def _frame(heads: list[str], body: list[list[str]]) -> Frame:
    """Written cells as a table, columns in ``heads``' order."""
    return Frame((dict(zip(heads, rec, strict=True)) for rec in body), heads)
