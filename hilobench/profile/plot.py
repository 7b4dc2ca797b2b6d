"""The stacked-bar figure of ``hilobench profile``: one bar per case, split by kind, as shares
of the profiled step. Drawn with matplotlib, imported only here (see report.plots)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hilobench.profile.breakdown import Breakdown
from hilobench.report.plots import _save, require_matplotlib


def stacked_bars(breakdowns: Sequence[Breakdown], path: Path) -> dict[str, dict[str, float]]:
    """Draw the figure to ``path``; returns what it drew: case → kind → share (each case's
    shares sum to 1)."""
    plt = require_matplotlib()
    drawn = {b.label: {p.name: p.share for p in b.kinds} for b in breakdowns}
    kinds: list[str] = []
    for shares in drawn.values():
        kinds += [k for k in shares if k not in kinds]
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.7 * len(breakdowns) + 0.22 * len(kinds)))
    cmap = plt.get_cmap("tab20")
    labels = [b.label for b in breakdowns]
    left = [0.0] * len(breakdowns)
    for i, kind in enumerate(kinds):
        widths = [100 * drawn[lbl].get(kind, 0.0) for lbl in labels]
        ax.barh(labels, widths, left=left, label=kind, color=cmap(i % 20))
        left = [a + w for a, w in zip(left, widths, strict=True)]
    ax.set_xlabel("share of one step (%)")
    ax.set_xlim(0, max(100.0, *left))
    ax.invert_yaxis()
    ax.set_title("where the time goes")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    _save(plt, fig, path)
    return drawn
