"""``hilobench export RUN --format github-action-benchmark|bencher``: a run's medians for the
tools that keep benchmark history in CI. Parsing and printing only; the formats live in
hilobench/report/trend.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from hilobench.core.errors import ConfigError, check_choice

err = Console(stderr=True)


def export(
    run_dir: Path = typer.Argument(..., help="A run directory (one that holds measured rows)."),
    fmt: str = typer.Option(..., "--format", help="github-action-benchmark or bencher."),
    metric: str = typer.Option(
        "throughput",
        help="github-action-benchmark: throughput (customBiggerIsBetter) or latency "
        "(customSmallerIsBetter).",
    ),
    out_file: Path | None = typer.Option(None, "--out", help="Write here (default: stdout)."),
) -> None:
    """Write a run's medians and 95% intervals as a benchmark-history tool reads them."""
    from hilobench.report.trend import FORMATS, METRICS
    from hilobench.report.trend import export as build

    check_choice("format", fmt, FORMATS)
    check_choice("metric", metric, METRICS)
    # the run loader (the report package's runs)
    from hilobench.core.fileio import write_text_atomic
    from hilobench.report.run_rows import env_label
    from hilobench.store.reader import load_rows, read_env

    rows = load_rows(run_dir)
    env = read_env(run_dir) if run_dir.is_dir() else {}
    doc = build(rows, fmt, metric, env_label(env) if env else "")
    text = json.dumps(doc, indent=2) + "\n"
    left = len(rows) - len(doc)
    if left > 0:
        err.print(f"{left} row(s) without a measured median left out", highlight=False)
    if out_file is None:
        sys.stdout.write(text)
        return
    if out_file.suffix != ".json":
        raise ConfigError(f"--out {str(out_file)!r}: use a .json file name")
    write_text_atomic(out_file, text)
    err.print(escape(f"wrote {out_file} ({len(doc)} case(s), {fmt})"), highlight=False)


def register(app: typer.Typer) -> None:
    """Attach ``export``."""
    app.command()(export)
