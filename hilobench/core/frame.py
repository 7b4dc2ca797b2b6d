"""Small tables of records: the columns in order and one dict per row.

hilobench's tables hold tens of rows (a run's results, a side-by-side with the paper, one
column per machine), so plain dicts and the standard ``csv`` module do what they need; a data
frame library would cost more import time than the tables take to build. A cell that a record
lacks reads as None and is written empty, in CSV and Markdown alike.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from hilobench.core.numfmt import missing


class Frame:
    """Records with an order of columns: the union of the records' keys in the order they first
    appear, unless ``columns`` names them."""

    def __init__(self, records: Iterable[dict[str, Any]], columns: Iterable[str] | None = None):
        self.records = [dict(r) for r in records]
        if columns is None:
            columns = dict.fromkeys(k for r in self.records for k in r)
        self.columns: list[str] = list(columns)

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, column: object) -> bool:
        return column in self.columns

    def __getitem__(self, column: str) -> list[Any]:
        """The values of ``column``, one per row (None where a record lacks it)."""
        if column not in self.columns:
            raise KeyError(column)
        return [r.get(column) for r in self.records]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Each row as a dict holding every column."""
        return ({c: r.get(c) for c in self.columns} for r in self.records)

    def with_column(self, name: str, values: Iterable[Any], at: int | None = None) -> Frame:
        """A copy with column ``name`` set to ``values`` (inserted at ``at``, else last)."""
        vals = list(values)
        if len(vals) != len(self.records):
            raise ValueError(f"{len(vals)} values for {len(self.records)} rows")
        cols = [c for c in self.columns if c != name]
        cols.insert(len(cols) if at is None else at, name)
        return Frame((dict(r, **{name: v}) for r, v in zip(self.records, vals, strict=True)), cols)

    def drop(self, *columns: str) -> Frame:
        return Frame(self.records, [c for c in self.columns if c not in columns])

    def select(self, columns: Iterable[str]) -> Frame:
        return Frame(self.records, columns)

    def rename(self, names: dict[str, str]) -> Frame:
        """Columns renamed through ``names`` (others keep theirs)."""
        recs = ({names.get(c, c): r.get(c) for c in self.columns} for r in self.records)
        return Frame(recs, [names.get(c, c) for c in self.columns])

    def where(self, keep: Callable[[dict[str, Any]], bool]) -> Frame:
        """The rows for which ``keep(row)`` holds."""
        return Frame((r for r in self.records if keep(r)), self.columns)

    def dropna(self, *columns: str) -> Frame:
        """The rows with a value in every one of ``columns``."""
        return self.where(lambda r: not any(missing(r.get(c)) for c in columns))

    def groups(self, column: str) -> list[tuple[Any, Frame]]:
        """Rows grouped by ``column``'s value, groups in sorted order of that value."""
        keys = sorted(dict.fromkeys(self[column]), key=lambda v: (v is None, str(v)))
        return [
            (k, Frame((r for r in self.records if r.get(column) == k), self.columns)) for k in keys
        ]

    def by(self, column: str) -> dict[Any, dict[str, Any]]:
        """Row lookup by the value of ``column`` (the last row wins on a repeat)."""
        return {r.get(column): dict(r) for r in self}

    def to_csv(self) -> str:
        """CSV with a header line: missing cells empty, floats at full precision."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.columns)
        for r in self.records:
            w.writerow(["" if missing(v := r.get(c)) else v for c in self.columns])
        return buf.getvalue()


def _parse(text: str) -> Any:
    """A CSV cell: empty → None, then int, then float, else the text."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_csv(path: Path | str) -> Frame:
    """A CSV file with a header line; numbers parsed, empty cells None."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        recs = [{k: _parse(v) for k, v in rec.items()} for rec in reader]
        return Frame(recs, reader.fieldnames or [])
