"""Progress of a run on the console: which unit starts, which rows land, how long is left.

The runner calls a :class:`Reporter` as it goes (``start``, then ``begin`` / ``done`` per unit,
``stop``); the reporters only read what they are given. :class:`LineReporter` prints a line
per case as it starts (logs, pipes, the single-shot commands); :class:`BarReporter` shows a bar
with an ETA weighted by each case's budget, and a line per finished row.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from hilobench.core import numfmt as nf
from hilobench.core.case import Case
from hilobench.core.plan import Unit
from hilobench.core.row import is_measured
from hilobench.measure.rowstats import derive


class Reporter:
    """Shows progress; the base class shows nothing."""

    def start(self, total_cases: int, total_weight: float) -> None: ...

    def begin(self, unit: Unit) -> None: ...

    def done(self, unit: Unit, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def round(self, unit: Unit, done: int, expected: int, eta_s: float) -> None:
        """A compare group finished round ``done`` of about ``expected``."""

    def note(self, text: str) -> None:
        """A line worth telling (e.g. a group that continues stored rounds)."""

    def stop(self) -> None: ...


class LineReporter(Reporter):
    """One ``[i/n] label`` line per case as it starts (logs, pipes, the single-shot commands)."""

    def __init__(self, console: Console):
        self.console = console
        self.n = 0
        self.total = 0

    def start(self, total_cases: int, total_weight: float) -> None:
        self.total = total_cases

    def begin(self, unit: Unit) -> None:
        for sc in unit.items:
            self.n += 1
            self.console.print(
                f"[dim][{self.n}/{self.total}][/dim] {escape(sc.case.label())}", highlight=False
            )

    def done(self, unit: Unit, rows: Sequence[Mapping[str, Any]]) -> None:
        """A row with too few samples for an interval says why, in one line."""
        for row in rows:
            if row.get("status") == "few-samples":
                msg = escape(f"{row.get('name')}: {row.get('message', '')}")
                self.console.print(f"[yellow]{msg}[/yellow]", highlight=False)

    def note(self, text: str) -> None:
        self.console.print(escape(text), highlight=False)


class BarReporter(Reporter):
    """A progress bar with an ETA (weighted by each case's budget) and a line per row."""

    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[cases]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task: TaskID | None = None
        self.finished = 0
        self.total = 0
        self.logged = 0.0  # when a log last got a round line

    def start(self, total_cases: int, total_weight: float) -> None:
        self.total = total_cases
        self.progress.start()
        self.task = self.progress.add_task(
            "starting", total=max(total_weight, 1e-9), cases=f"0/{total_cases}"
        )

    def begin(self, unit: Unit) -> None:
        label = unit.items[0].case.label()
        if unit.group is not None:
            label = f"compare {unit.group.name}: {len(unit.items)} interleaved @ " + label
        if self.task is not None:
            self.progress.update(self.task, description=escape(label[:60]))
        if not self.console.is_terminal:  # a log gets a line where a terminal gets the bar
            self.console.print(f"[dim]started[/dim] {escape(label)}", highlight=False)

    def done(self, unit: Unit, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            self.finished += 1
            self.console.print(row_line(row, self.finished, self.total), highlight=False)
        if self.task is not None:
            self.progress.update(
                self.task, advance=unit.weight, cases=f"{self.finished}/{self.total}"
            )

    def round(self, unit: Unit, done: int, expected: int, eta_s: float) -> None:
        text = round_text(unit, done, expected, eta_s)
        if self.task is not None:
            self.progress.update(self.task, description=escape(text))
        now = time.monotonic()
        if not self.console.is_terminal and now - self.logged >= LOG_ROUND_S:
            self.logged = now  # a log gets a line now and then, a terminal the bar's text
            self.console.print(f"[dim]{escape(text)}[/dim]", highlight=False)

    def note(self, text: str) -> None:
        self.console.print(escape(text), highlight=False)

    def stop(self) -> None:
        self.progress.stop()


#: Seconds between the round lines a compare group writes to a log (not a terminal).
LOG_ROUND_S = 10.0


def round_text(unit: Unit, done: int, expected: int, eta_s: float) -> str:
    """``compare NAME: round 7/22, ETA 14 s``: a compare group's progress, round by round."""
    name = unit.group.name if unit.group is not None else unit.items[0].case.label()
    return f"compare {name}: round {done}/{max(expected, done)}, ETA {nf.duration(eta_s)}"


def row_line(row: Mapping[str, Any], i: int, n: int) -> str:
    """The console line of finished row ``i`` of ``n``: status, label, speed or why not."""
    label = Case.from_json(row["case"]).label() if "case" in row else row.get("name", "")
    label = escape(label)
    status = row.get("status")
    if is_measured(row):
        st = derive(row)  # the statistics every view shows: from the samples
        tp, samples = st.get("throughput_median"), st.get("n_samples")
        lo, hi = st.get("throughput_ci_low"), st.get("throughput_ci_high")
        speed = nf.measured(tp, lo, hi, n=samples)
        speed += " img/s" if speed else ""
        if row.get("ratio_to_ref") is not None:
            x = nf.ratio(row["ratio_to_ref"], row.get("ratio_ci_low"), row.get("ratio_ci_high"))
            speed += f", {x} {row.get('ref')}"
        if status == "ok":
            return f"[dim][{i}/{n}][/dim] [green]ok[/green] {label}  {escape(speed)}"
        why = escape(str(row.get("message", "")))  # few samples: why, in one line
        return f"[dim][{i}/{n}][/dim] [yellow]{status}[/yellow] {label}  {escape(speed)}: {why}"
    msg = escape(str(row.get("message", ""))[:80])
    return f"[dim][{i}/{n}][/dim] [red]{status}[/red] {label}  {msg}"
