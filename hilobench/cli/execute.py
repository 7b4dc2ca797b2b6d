"""Measure a command line's cases and show their rows: what ``layer`` and ``model`` (and their
``--max-batch`` searches) share once their cases are built. The run directory, its rules and
the stop signals are the run session's (:mod:`hilobench.run.session`); this module checks the
cases, prints and renders."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from hilobench.cli.caseopts import CaseFlags
from hilobench.cli.rowtable import FORMATS, choose_columns, print_table, render_text
from hilobench.core.case import Case
from hilobench.core.errors import check_choice
from hilobench.core.terminal import console

err = console(stderr=True, width=160)


def say(line: str) -> None:
    """One line on stderr, as written (names and paths are not markup)."""
    err.print(line, markup=False, highlight=False, soft_wrap=True)


def execute(cases: list[Case], f: CaseFlags, title: str) -> list[dict[str, Any]]:
    """Validate every case, then measure them one by one in this process, each row saved as
    it lands. With ``--max-batch``, find each case's largest batch within ``--mem-limit`` (or
    the device's default limit) instead, every probe in a fresh process."""
    from hilobench.run.dircheck import mode_of
    from hilobench.run.engine import validate_case  # torch ~1.5 s: only measuring needs it
    from hilobench.run.progress import LineReporter
    from hilobench.run.session import open_session, units_of

    check_choice("format", f.fmt, FORMATS)
    shown = choose_columns(f.columns, f.wide)
    cases = list({c.key: c for c in cases}.values())  # a case named twice is measured once
    for c in cases:
        validate_case(c, fits=True)
    limit = None
    if f.max_batch:
        from hilobench.run.maxbatch import search_limit

        limit = search_limit(cases, f.mem_limit)
    mode = mode_of(append=f.append)
    with open_session(
        f.out_dir, mode=mode, device=cases[0].device, threads=cases[0].threads, say=say
    ) as session:
        warn_emulated(cases)  # after every refusal: a refused run prints its one line only
        rows = session.measure(
            units_of(cases, search_limit=limit),
            isolate=False,  # one case after another here; `suite run` isolates each case
            reporter=LineReporter(err),
            roofline=f.roofline and not f.max_batch,
        )
        where = session.target
    if f.fmt == "table":
        print_table(console(), rows, title, shown)
        err.print(f"saved {len(rows)} rows to {where}")
    else:
        sys.stdout.write(render_text(rows, f.fmt, shown) + "\n")
    return rows


def warn_emulated(cases: Iterable[Case]) -> None:
    """One line per dtype this CPU only emulates, before anything slow starts."""
    from hilobench.measure.capability import emulation_warnings  # torch ~1.5 s

    for line in emulation_warnings(cases):
        say(line)
