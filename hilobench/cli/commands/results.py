"""``hilobench show``, ``report`` and ``merge``: stored runs on the command line. Parsing and
printing only; the work lives in store.py (the rows) and the report package.

The CLI imports this module at start-up, so what loads matplotlib is imported inside
the command that needs it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from hilobench.cli.rowtable import COLUMNS_HELP, FORMATS, WIDE_HELP, choose_columns, print_rows
from hilobench.core.errors import ConfigError, check_choice

err = Console(stderr=True)


def show(
    run_dir: Path = typer.Argument(..., help="A run directory (one that holds measured rows)."),
    fmt: str = typer.Option("table", "--format", help="table, json, csv or md."),
    columns: str | None = typer.Option(None, "--columns", help=COLUMNS_HELP),
    wide: bool = typer.Option(False, "--wide", help=WIDE_HELP),
) -> None:
    """Print a stored run as a table, JSON, CSV or Markdown."""
    from hilobench.report.run_rows import env_label
    from hilobench.store.reader import load_rows, read_env

    check_choice("format", fmt, FORMATS)
    shown = choose_columns(columns, wide)
    rows = load_rows(run_dir)
    env = read_env(run_dir)
    if env:
        err.print(
            escape(f"{run_dir}: {len(rows)} rows measured on {env_label(env)}"), highlight=False
        )
    print_rows(rows, fmt, str(run_dir), shown)


def report(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories to report on."),
    out_dir: Path = typer.Option(Path("report"), "--out", help="Where report.md and PNGs go."),
    paper: Path | None = typer.Option(None, help="Folder with the paper's CSVs."),
) -> None:
    """Write report.md with plots: scaling, MACs vs tokens, and a side-by-side with the paper."""
    # matplotlib (~0.5 s) loads when the report draws
    from hilobench.report.markdown import build_report
    from hilobench.report.plots import require_matplotlib
    from hilobench.store.writer import check_writable, load_rows

    for d in run_dirs:
        load_rows(d)  # every input must exist before anything is written
    if paper is not None and not paper.is_dir():
        raise ConfigError(f"--paper {str(paper)!r} is not a directory")
    require_matplotlib()
    check_writable(out_dir)
    rep = build_report(run_dirs, out_dir, paper_dir=paper)
    err.print(escape(f"wrote {rep.path} and {len(rep.figures)} figure(s)"), highlight=False)


def merge(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories, e.g. one per machine."),
    out_file: Path | None = typer.Option(None, "--out", help="Write .csv or .md here."),
    metric: str = typer.Option("throughput_median", help="Row column to tabulate."),
    ref: str | None = typer.Option(
        None, help="Models × machines with ratios to this name on each machine (paper's shape)."
    ),
    plot: Path | None = typer.Option(None, help="Also draw the models × machines table (.png)."),
) -> None:
    """One table across machines: a row per case, a column per environment."""
    # matplotlib (~0.5 s) only with --plot
    from hilobench.core.fileio import write_text_atomic
    from hilobench.report.hardware import hardware_table, plot_hardware
    from hilobench.report.merge import merge_runs
    from hilobench.report.run_rows import load_runs
    from hilobench.store.writer import check_writable, to_markdown

    runs = load_runs(run_dirs)
    known = {k for run in runs for r in run.rows for k in r}
    if metric not in known:
        raise ConfigError(f"unknown metric {metric!r}; rows have: {', '.join(sorted(known))}")
    if plot is not None and plot.suffix != ".png":
        raise ConfigError(f"--plot {str(plot)!r}: use a .png file name")
    hardware = ref is not None or plot is not None
    df = hardware_table(runs, metric, ref) if hardware else merge_runs(runs, metric)
    if plot is not None:
        from hilobench.report.plots import require_matplotlib

        require_matplotlib()
        check_writable(plot.parent)
        plot_hardware(df, plot, metric=metric, ref=ref)
        err.print(escape(f"wrote {plot}"), highlight=False)
    if out_file is None:
        sys.stdout.write(to_markdown(df) + "\n")
        return
    if out_file.suffix not in (".csv", ".md"):
        raise ConfigError(f"--out {str(out_file)!r}: use a .csv or .md file name")
    check_writable(out_file.parent)
    text = df.to_csv() if out_file.suffix == ".csv" else to_markdown(df) + "\n"
    write_text_atomic(out_file, text)
    err.print(escape(f"wrote {out_file} ({len(df)} rows x {len(runs)} run(s))"), highlight=False)


def register(app: typer.Typer) -> None:
    """Attach ``show``, ``report`` and ``merge``."""
    app.command()(show)
    app.command()(report)
    app.command()(merge)
