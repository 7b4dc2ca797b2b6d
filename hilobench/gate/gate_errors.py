"""The gate's exceptions and exit codes, a leaf every gate module may import.

Exit codes: 0 pass, 1 regression (or a failed claim), 2 usage error, 3 missing or
incompatible baseline, 4 unjudged (every case compared, but some had too few samples for a
verdict). Kept apart from the result types (:mod:`hilobench.gate.verdict`) so that
loading runs and baselines, which raise these, never imports what judges them.
"""

from __future__ import annotations

# re-exported: the gate's exit codes, declared with every other one in core/errors.py
from hilobench.core.errors import EXIT_BASELINE as EXIT_BASELINE
from hilobench.core.errors import EXIT_PASS as EXIT_PASS
from hilobench.core.errors import EXIT_REGRESSION as EXIT_REGRESSION
from hilobench.core.errors import EXIT_UNJUDGED as EXIT_UNJUDGED
from hilobench.core.errors import EXIT_USAGE as EXIT_USAGE


class BaselineError(Exception):
    """The baseline is missing or cannot be compared with the candidate (exit code 3)."""


class GateError(Exception):
    """A side cannot be measured: the base (unknown revision, too old, not a checkout: exit
    3) or the candidate (its code does not start: exit 1). ``role`` names the side."""

    def __init__(self, message: str, side: str = "base"):
        super().__init__(message)
        self.role = side

    @property
    def exit_code(self) -> int:
        return EXIT_REGRESSION if self.role == "candidate" else EXIT_BASELINE
