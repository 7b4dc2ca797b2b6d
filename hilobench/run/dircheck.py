"""What a run directory must hold before a command writes into it: one rule set for a new run,
``--append``, ``--resume`` and ``--force-resume`` (:data:`MODES`), the lock that makes the
writer the only one, and what resuming needs (the keys measured already, a torn last row cut
off, the latest run under a root).

Every command that writes rows goes through :func:`check_run_dir`, so a directory that
``layer`` refuses is refused by ``suite run`` for the same reason and in the same words.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hilobench.core.errors import ConfigError
from hilobench.measure.env import ROW_FIELDS, class_differences, code_state, machine_class
from hilobench.run import rounds as group_rounds
from hilobench.run.lock import RunLock, describe
from hilobench.store.reader import ROWS, repair_torn_tail
from hilobench.store.writer import RunDir


@dataclass(frozen=True)
class Mode:
    """How a command may treat a run directory that holds rows already."""

    name: str
    #: may add rows to a directory that holds some (from the same machine class only)
    adds: bool
    #: skips the cases the directory holds, after cutting off a row torn by a kill
    resumes: bool
    #: refuses rows of another suite file or code version
    same_code: bool


MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        Mode("new", adds=False, resumes=False, same_code=False),
        Mode("append", adds=True, resumes=False, same_code=False),
        Mode("resume", adds=True, resumes=True, same_code=True),
        Mode("force-resume", adds=True, resumes=True, same_code=False),
    )
}

#: What a refused new run suggests, by the flag its command offers to add to the rows.
OFFERS: dict[str, str] = {
    "--append": "add --append to add rows to it",
    "--resume": "pass --resume to finish that run",
}


def mode_of(*, append: bool = False, resume: bool = False, force_resume: bool = False) -> Mode:
    """The mode a command line asks for (``--force-resume`` is ``--resume`` without the
    provenance check)."""
    if force_resume:
        return MODES["force-resume"]
    if resume:
        return MODES["resume"]
    return MODES["append" if append else "new"]


def check_run_dir(
    run: RunDir,
    env: dict[str, Any],
    mode: Mode,
    *,
    offer: str = "--append",
    suite: str | None = None,
    digest: str | None = None,
) -> list[dict[str, Any]]:
    """Refuse to write into ``run`` when its rows are another run's (ConfigError, one line);
    the rows it holds otherwise.

    Rows already there are kept apart unless the mode adds to them; rows of another machine
    class never mix (threads and dtype are per row, so they may differ); a resume refuses rows
    of another suite (name, content hash) or code version unless it is forced."""
    rows = run.rows() if run.rows_path.is_file() else []
    if not rows:
        return rows
    where = repr(str(run.path))
    if not mode.adds:
        raise ConfigError(
            f"{where} already holds {len(rows)} row(s) of another run; {OFFERS[offer]} "
            "or choose another --out"
        )
    theirs = {k: v for k, v in machine_class(run.env(), rows).items() if k not in ROW_FIELDS}
    ours = {k: v for k, v in machine_class(env).items() if k not in ROW_FIELDS}
    diff = class_differences(theirs, ours)
    if diff:
        raise ConfigError(
            f"{where} holds rows of another machine class ({'; '.join(diff[:3])}); rows of "
            "different machines do not mix: choose another --out"
        )
    if mode.same_code:
        code = code_state(exclude=[run.path])
        diffs = provenance_differences(rows, suite, digest, code)
        if diffs:
            raise ConfigError(
                f"cannot resume {where}: its rows come from another suite or code version "
                f"({'; '.join(diffs[:3])}); pass --force-resume to mix them"
            )
    return rows


def provenance_differences(
    rows: Iterable[dict[str, Any]], suite: str | None, digest: str | None, code: dict[str, Any]
) -> list[str]:
    """Why ``rows`` do not come from this suite (name, content hash) and code (``code``:
    :func:`code_state`); empty when they do. A column a row does not record (written before it
    existed) is not judged; the commit and dirty flag are judged only where both sides are in
    a git checkout, the package version otherwise."""
    now: dict[str, Any] = {"suite": suite, "suite_hash": digest, **code}
    seen: dict[str, set[str]] = {}
    for r in rows:
        in_git = r.get("git_commit") is not None and code.get("git_commit") is not None
        code_cols = ("git_commit", "git_dirty") if in_git else ("hilobench_version",)
        for k in ("suite", "suite_hash", *code_cols):
            if k in r and now.get(k) is not None and r[k] != now[k]:
                seen.setdefault(k, set()).add(json.dumps(r[k]))
    return [f"{k} {', '.join(sorted(v))} -> {json.dumps(now[k])}" for k, v in seen.items()]


def done_keys(run: RunDir) -> set[str]:
    """Keys of the cases a run directory already holds (any status but ``partial``: the rows
    of an interrupted compare group, which ``--resume`` completes)."""
    if not run.rows_path.exists():
        return set()
    return {
        str(r["case_key"])
        for r in run.rows()
        if r.get("case_key") and r.get("status") != group_rounds.PARTIAL
    }


def repair_tail(run: RunDir) -> str | None:
    """Cut a row torn by a kill off the rows before ``--resume`` appends, so every line stays
    a whole row (:func:`hilobench.store.reader.repair_torn_tail`); a note when it did."""
    return repair_torn_tail(run.rows_path)


def latest_run(root: Path) -> Path | None:
    """The newest run directory under ``root`` that holds rows (None when there is none)."""
    previous = sorted(p for p in root.glob("*") if (p / ROWS).is_file())
    return previous[-1] if previous else None


@contextmanager
def hold(target: Path, say: Callable[[str], None]) -> Iterator[RunLock]:
    """The run directory's lock for the block (:class:`hilobench.run.lock.RunLock`), saying
    when it takes over a lock left by a run that is gone."""
    with RunLock(target) as lock:
        if lock.took_over is not None:
            say(
                f"note: {target} was left locked by a run that is gone "
                f"({describe(lock.took_over)}); taking it over"
            )
        yield lock
