"""What a report wrote: a leaf type the report's sections fill in (so a section never imports
the module that assembles them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hilobench.core.frame import Frame
from hilobench.report.series import Series


@dataclass
class RunReport:
    """What :func:`hilobench.report.markdown.build_report` wrote: the Markdown file, each
    figure's series, each table."""

    path: Path
    figures: dict[str, Series] = field(default_factory=dict)
    tables: dict[str, Frame] = field(default_factory=dict)
