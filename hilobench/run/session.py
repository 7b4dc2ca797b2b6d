"""One run session: everything a command that writes a run directory does around measuring.

``layer``, ``model``, ``--max-batch``, ``suite run`` and ``profile`` all open a session
(:func:`open_session`), which owns, in this order: the stop signals (Ctrl-C / SIGTERM end the
run at any moment with exit 130 / 143, keeping every finished row and naming the command that
finishes the run where there is one), the directory's lock, the rules for a directory that
holds rows already (:mod:`hilobench.run.dircheck`: new, ``--append``, ``--resume``,
``--force-resume``), the environment fingerprint, creating the directory, running units
through :class:`hilobench.run.runner.Runner` (in this process or one fresh worker per case;
batch searches through :mod:`hilobench.run.maxbatch`) and writing the derived tables. Commands
parse and print; no command module opens a run directory itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from hilobench.core import numfmt as nf
from hilobench.core.case import Case
from hilobench.core.errors import ConfigError
from hilobench.core.fileio import make_dir, write_bytes_atomic, write_text_atomic
from hilobench.core.plan import CompareGroup, SuiteCase, Unit, plan, still_to_run
from hilobench.run.dircheck import Mode, check_run_dir, done_keys, hold, latest_run, repair_tail
from hilobench.run.progress import Reporter
from hilobench.run.signals import stop_on_signals
from hilobench.store.writer import DEFAULT_ROOT, RunDir, check_writable, new_run_dir

Say = Callable[[str], None]


@dataclass(frozen=True)
class SuiteInfo:
    """The suite a session runs: its name, its file (copied beside the rows) and the file's
    content hash (``suite_hash``)."""

    name: str
    path: Path | None = None
    digest: str | None = None


def choose_target(out_dir: Path | None, root: Path, mode: Mode, name: str = "") -> Path:
    """The run directory: ``out_dir``; for a resume without one, the latest run under
    ``root``; else a new timestamped one there. Refused when it cannot be written."""
    if out_dir is None and mode.resumes:
        out_dir = latest_run(root)
        if out_dir is None:
            raise ConfigError(f"nothing to resume: no earlier run of {name!r} under {root}")
    return check_writable(out_dir if out_dir is not None else new_run_dir(root))


@dataclass
class RunSession:
    """A locked, checked run directory and the runner that fills it (see the module)."""

    target: Path
    mode: Mode
    say: Say
    suite: SuiteInfo | None = None
    #: the command line that finishes this run, told at a stop (None: there is none)
    again: str | None = None
    run: RunDir | None = None
    env_id: str = ""
    #: a note on a torn last row that was cut off (resume only)
    repaired: str | None = None
    #: keys of the cases the directory already holds (resume only)
    done: set[str] = field(default_factory=set)
    #: keys of the cases this session is to leave measured, and when it began measuring
    keys: set[str] = field(default_factory=set)
    started: float | None = None
    landed: list[dict[str, Any]] = field(default_factory=list)

    def start(self, device: str, threads: int | None, offer: str) -> None:
        """Check the directory, fingerprint the machine and create the run (under the lock)."""
        from hilobench.measure.env import env_id, fingerprint  # psutil, torch: measuring only
        from hilobench.measure.timing import set_threads

        run = RunDir(self.target)
        # a row torn by a kill goes first: a run killed while writing its first row resumes
        # from scratch instead of being refused for holding no complete row
        self.repaired = repair_tail(run) if self.mode.resumes else None
        env = fingerprint(device, set_threads(threads))
        self.env_id = env_id(env)
        suite = self.suite.name if self.suite else None
        digest = self.suite.digest if self.suite else None
        check_run_dir(run, env, self.mode, offer=offer, suite=suite, digest=digest)
        self.done = done_keys(run) if self.mode.resumes else set()
        self.run = run.create({**env, "env_id": self.env_id})
        path = self.suite.path if self.suite else None
        if path is not None and path.is_file() and not (self.target / "suite.yaml").exists():
            from hilobench.store.reader import read_bytes

            write_bytes_atomic(self.target / "suite.yaml", read_bytes(path, "suite"))
        if self.repaired:
            self.say(self.repaired)

    def to_run(
        self, cases: list[SuiteCase], groups: list[CompareGroup] | None = None
    ) -> tuple[list[SuiteCase], list[str]]:
        """The cases still to measure (all of them unless resuming) and a note per compare
        group timed whole again."""
        self.keys = {sc.row_key for sc in cases}
        return still_to_run(cases, groups, self.done)

    def measure(
        self,
        units: list[Unit],
        *,
        isolate: bool,
        reporter: Reporter | None = None,
        roofline: bool = True,
    ) -> list[dict[str, Any]]:
        """Measure ``units`` (in this process, or each case in a fresh worker), saving every
        row as it lands, then write the tables; the rows measured."""
        from hilobench.run.maxbatch import search_suite_case  # no torch until a search runs
        from hilobench.run.runner import Runner

        assert self.run is not None, "measure() inside open_session only"
        if not self.keys:
            self.keys = {sc.row_key for u in units for sc in u.items}
        runner = Runner(
            self.run,
            env_id=self.env_id,
            isolate=isolate,
            reporter=reporter,
            suite=self.suite.name if self.suite else None,
            suite_hash=self.suite.digest if self.suite else None,
            roofline=roofline,
            searcher=search_suite_case,
        )
        self.started = time.perf_counter()
        self.landed = runner.rows  # the runner's list: rows landed before a stop count too
        runner.run_units(units)
        self.run.write_tables()
        return runner.rows

    def elapsed(self) -> str:
        """How long measuring took so far, for people."""
        return nf.duration(time.perf_counter() - (self.started or time.perf_counter()))

    def stopped(self) -> str:
        """What a stop leaves: the rows kept, where, and how to finish the run."""
        finish = f"; finish with `{self.again}`" if self.again else ""
        if self.run is None or self.started is None:
            return f"interrupted{finish}"
        self.run.write_tables()
        rows = self.run.rows() if self.run.rows_path.is_file() else []
        if self.mode.resumes:
            have = len(done_keys(self.run) & self.keys)
        else:
            have = len({str(r.get("case_key")) for r in self.landed} & self.keys)
        part = [r for r in rows if r.get("status") == "partial" and r.get("case_key") in self.keys]
        kept = f", {len(part)} partial ({part[0].get('n_samples')} round(s) kept)" if part else ""
        return (
            f"interrupted after {self.elapsed()}: {have} of {len(self.keys)} cases measured"
            f"{kept}, rows in {self.run.path}{finish}"
        )


@contextmanager
def open_session(
    out_dir: Path | None,
    *,
    mode: Mode,
    device: str,
    threads: int | None,
    say: Say,
    root: Path = DEFAULT_ROOT,
    offer: str = "--append",
    suite: SuiteInfo | None = None,
    again: Callable[[Path], str] | None = None,
) -> Iterator[RunSession]:
    """A :class:`RunSession` on ``out_dir`` (see :func:`choose_target`), locked and checked
    for the block. A stop at any moment inside (Ctrl-C, SIGTERM) writes the tables for the
    rows kept, says what was kept and how to finish (``again(target)``), and exits 130 / 143
    (``typer.Exit``) with the directory unlocked."""
    target = choose_target(out_dir, root, mode, suite.name if suite else "")
    with stop_on_signals() as stop:
        session = RunSession(target, mode, say, suite, again(target) if again else None)
        try:
            with hold(target, say):
                try:
                    session.start(device, threads, offer)
                    yield session
                except KeyboardInterrupt:
                    say(session.stopped())
                    raise typer.Exit(stop.exit_code) from None
        except KeyboardInterrupt:  # while taking or letting go of the lock
            say(f"interrupted{f'; finish with `{session.again}`' if session.again else ''}")
            raise typer.Exit(stop.exit_code) from None


def units_of(cases: Iterable[Case], *, search_limit: int | None = None) -> list[Unit]:
    """The units of a command line's cases, each alone; with
    ``search_limit`` each is a largest-batch search within that many bytes instead of a
    timing (``--max-batch``), every probe in a fresh worker."""
    from hilobench.run.maxbatch import PROBE_TIMEOUT_S

    if search_limit is None:
        return plan([SuiteCase(c, c.name) for c in cases])
    return plan(
        [SuiteCase(c, c.name, timeout=PROBE_TIMEOUT_S, max_batch=search_limit) for c in cases]
    )


@contextmanager
def profile_dir(out_dir: Path | None, root: Path, say: Say) -> Iterator[Path]:
    """A directory for a profile's files (``out_dir``, or a new timestamped one under
    ``root``), locked while they are written, under the stop signals as a run is: a stop
    says so and exits 130 / 143."""
    target = check_writable(out_dir if out_dir is not None else new_run_dir(root))
    with stop_on_signals() as stop:
        try:
            with hold(target, say):
                yield make_dir(target)
        except KeyboardInterrupt:
            say(f"interrupted; the files written so far are in {target}")
            raise typer.Exit(stop.exit_code) from None


def keep_claims(run: RunDir, claims: list[dict[str, Any]]) -> None:
    """Keep a suite's claims beside its rows (``claims.json``), so ``compare`` checks them on
    the stored run too."""
    write_text_atomic(run.path / "claims.json", json.dumps(claims, indent=2) + "\n")
