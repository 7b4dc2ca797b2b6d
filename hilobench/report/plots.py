"""The report's figures, drawn with matplotlib (an optional dependency: ``hilobench[plot]``).
Every plotting function returns the series it drew, so tests check data, not pixels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hilobench.core.errors import ConfigError
from hilobench.core.fileio import atomic_path
from hilobench.report.series import Series


def _save(plt: Any, fig: Any, path: Path) -> None:
    """Draw ``fig`` to ``path`` whole or not at all (a temporary PNG renamed into place)."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)


def require_matplotlib() -> Any:
    """``matplotlib.pyplot`` on the Agg backend; ConfigError naming the extra when missing."""
    try:
        import matplotlib  # optional, and ~0.5 s to import: only drawing a figure needs it
    except ImportError:
        raise ConfigError(
            "plots need matplotlib, which is not installed; install it with "
            "pip install 'hilobench[plot]'"
        ) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_lines(
    series: Series,
    path: Path,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    loglog: bool = False,
    logy: bool = False,
    point_labels: dict[str, list[str]] | None = None,
) -> Series:
    """Line plot, one line per series; ``point_labels`` names a series' points (e.g. their
    batch) beside them. Returns what it drew."""
    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, (x, y) in series.items():
        ax.plot(x, y, marker="o", label=name)
        for xi, yi, text in zip(x, y, (point_labels or {}).get(name, []), strict=False):
            ax.annotate(text, (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    if loglog:
        ax.set_xscale("log")
    if loglog or logy:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(plt, fig, path)
    return series


def plot_bars(
    series: Series,
    path: Path,
    *,
    title: str,
    ylabel: str,
    errors: dict[str, tuple[list[float], list[float]]] | None = None,
    hline: float | None = None,
) -> Series:
    """Grouped bars: every series shares the category labels of its x; returns what it drew.
    ``errors`` maps a series to (lower, upper) bounds drawn as error bars."""
    plt = require_matplotlib()
    cats: list[Any] = []
    for x, _ in series.values():
        cats += [c for c in x if c not in cats]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(cats) + 2), 4.5))
    width = 0.8 / max(1, len(series))
    top = max((v for _, y in series.values() for v in y if v == v), default=1.0)
    for i, (name, (x, y)) in enumerate(series.items()):
        pos = [cats.index(c) + (i - (len(series) - 1) / 2) * width for c in x]
        yerr = None
        if errors and name in errors:
            lo, hi = errors[name]
            yerr = [
                [max(0.0, v - lo_) if lo_ == lo_ else 0.0 for v, lo_ in zip(y, lo, strict=True)],
                [max(0.0, hi_ - v) if hi_ == hi_ else 0.0 for v, hi_ in zip(y, hi, strict=True)],
            ]
        ax.bar(pos, y, width, label=name, yerr=yerr, capsize=3)
    if hline is not None:
        ax.axhline(hline, color="grey", lw=0.8, ls="--")
    ax.set_ylim(0, 1.6 * top)  # a very wide interval is clipped rather than flattening the bars
    ax.set_xticks(range(len(cats)))
    ax.set_xticklabels([str(c) for c in cats], rotation=30, ha="right", fontsize=8)
    ax.set(title=title, ylabel=ylabel)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(plt, fig, path)
    return series
