"""The stacked-bar figure of ``hilobench profile``: one bar per case, split by kind, as shares
of the profiled step. Drawn with matplotlib, imported only here (see report.plots)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from hilobench.core.fileio import atomic_path
from hilobench.profile.breakdown import SPECIAL, Breakdown


def stacked_bars(breakdowns: Sequence[Breakdown], path: Path) -> dict[str, dict[str, float]]:
    """Draw the figure to ``path``; returns what it drew: case → kind → share (each case's
    shares sum to 1)."""
    from hilobench.report.plots import require_matplotlib  # matplotlib ~0.5 s, when drawing

    plt = require_matplotlib()
    drawn = {b.label: {p.name: p.share for p in b.kinds} for b in breakdowns}
    kinds: list[str] = []
    for shares in drawn.values():
        kinds += [k for k in shares if k not in kinds]
    kinds.sort(key=lambda k: k in SPECIAL)  # the parts that are no module last, in order
    fig, ax = plt.subplots(figsize=(11, 1.4 + 1.0 * len(breakdowns)))
    cmap = plt.get_cmap("tab20")
    labels = [b.label for b in breakdowns]
    ticks = [textwrap.fill(lbl, 34) for lbl in labels]
    left = [0.0] * len(breakdowns)
    for i, kind in enumerate(kinds):
        widths = [100 * drawn[lbl].get(kind, 0.0) for lbl in labels]
        ax.barh(ticks, widths, left=left, label=kind, color=cmap(i % 20))
        left = [a + w for a, w in zip(left, widths, strict=True)]
    ax.set_xlabel("share of one step (%)")
    ax.set_xlim(0, max(100.0, *left))
    ax.invert_yaxis()
    ax.set_title("where the time goes")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    try:
        with atomic_path(path) as tmp:  # whole or not at all
            fig.savefig(tmp, dpi=110, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return drawn
