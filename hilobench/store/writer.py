"""Result rows ⇄ files. ``rows.jsonl`` is the source of truth (appended and flushed per row, so
an interrupted run loses nothing); ``results.csv`` (every field) and ``results.md`` (the
table's columns) are derived from it.
Reading goes through :mod:`hilobench.store.reader` (checked rows, one-line errors), writing
through :mod:`hilobench.core.fileio` (atomic files, synced appends).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hilobench.core import numfmt as nf
from hilobench.core.columns import markdown, rows_markdown
from hilobench.core.errors import ConfigError
from hilobench.core.fileio import append_text, make_dir, write_text_atomic
from hilobench.core.frame import Frame
from hilobench.core.row import ROW_COLUMNS
from hilobench.measure.rowstats import derive, shown
from hilobench.store.reader import ENV, ROWS, load_rows, read_env

CSV = "results.csv"
MD = "results.md"
DEFAULT_ROOT = Path("results") / "runs"

#: Columns that hold lists or dicts: kept in JSONL, left out of (or flattened for) the tables.
_BULKY = ("samples_s", "traceback", "case", "options", "max_batch_probes")


def new_run_dir(root: Path | str = DEFAULT_ROOT) -> Path:
    """A fresh ``<root>/<UTC timestamp>`` path (not created yet)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = Path(root) / stamp
    n = 1
    while path.exists():
        path = Path(root) / f"{stamp}-{n}"
        n += 1
    return path


def run_dir_name(name: str) -> str:
    """``name`` (a suite's, from its file) as one safe directory name under the runs root:
    characters outside ``[A-Za-z0-9._-]`` (path separators included) become ``-``, and leading
    or trailing dots and dashes go, so it can never climb out (``../../x`` → ``x``)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")
    return slug or "suite"


def check_writable(path: Path | str) -> Path:
    """Refuse an output directory we could not write, before anything is measured or created."""
    path = Path(path)
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ConfigError(
            f"output path {str(path)!r} is not a directory ({str(probe)!r} is a file)"
        )
    try:  # a real probe: permission bits alone say nothing for root or read-only mounts
        os.rmdir(tempfile.mkdtemp(dir=probe, prefix=".hilobench-probe-"))
    except OSError:
        raise ConfigError(f"output directory {str(path)!r} is not writable") from None
    return path


class RunDir:
    """One run's directory: ``env.json`` + ``rows.jsonl`` + derived tables."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    @property
    def rows_path(self) -> Path:
        return self.path / ROWS

    def create(self, env: dict[str, Any]) -> RunDir:
        make_dir(self.path)
        if not (self.path / ENV).exists():
            write_text_atomic(self.path / ENV, json.dumps(env, indent=2, default=str) + "\n")
        return self

    def record_peak(self, device: str, dtype: str, macs_per_s: float) -> None:
        """Keep the measured GEMM peak beside the environment, keyed ``device/dtype``."""
        env = self.env()
        env.setdefault("peak_macs_per_s", {})[f"{device}/{dtype}"] = macs_per_s
        write_text_atomic(self.path / ENV, json.dumps(env, indent=2, default=str) + "\n")

    def append(self, row: dict[str, Any]) -> None:
        """Append one row and push it to disk now: a kill after this line keeps the row."""
        self.append_rows([row])

    def append_rows(self, rows: list[dict[str, Any]]) -> None:
        """Append rows in one write and push them to disk now, so the rows of one unit (a
        compare group's members) land together, as whole lines. A failed write leaves the
        rows before it and raises a one-line ConfigError."""
        if not rows:
            return
        append_text(self.rows_path, "".join(json.dumps(row, default=str) + "\n" for row in rows))

    def rows(self) -> list[dict[str, Any]]:
        return load_rows(self.path)

    def env(self) -> dict[str, Any]:
        """The run's ``env.json`` ({} when there is none yet)."""
        return read_env(self.path)

    def write_tables(self) -> None:
        """Derive results.csv / results.md from the rows (nothing yet: nothing to write)."""
        rows = self.rows() if self.rows_path.exists() else []
        if not rows:
            return
        df = table_frame(rows)
        write_text_atomic(self.path / CSV, df.to_csv())
        write_text_atomic(self.path / MD, rows_markdown(rows, derive) + "\n")


def table_frame(rows: list[dict[str, Any]]) -> Frame:
    """Flat table of rows: the standard columns first, lists joined, bulky fields dropped (the
    samples among them: their statistics, derived from them, stand in their place)."""
    flat = []
    for r in rows:
        d = {k: v for k, v in shown(r).items() if k not in _BULKY}
        for k in ("uncounted_ops", "macs_ignored_ops"):
            if isinstance(d.get(k), list):
                d[k] = ";".join(d[k])
        flat.append(d)
    df = Frame(flat)
    first = [c for c in ROW_COLUMNS if c in df.columns]
    rest = [c for c in df.columns if c not in first]
    return df.select(first + rest)


def to_markdown(df: Frame) -> str:
    """Every field of ``df`` as Markdown (the ``--wide`` view), cells by
    :func:`hilobench.core.numfmt.plain`; the default view is
    :func:`hilobench.cli.rowtable.rows_markdown`."""
    body = [[nf.plain(v) for v in rec.values()] for rec in df]
    return markdown([str(c) for c in df.columns], body, [True] * len(df.columns))
