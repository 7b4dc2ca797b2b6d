"""A compare group's finished rounds, kept in the run directory while the group is timed.

A compare group is timed in one worker, round by round, for the whole of its members' budgets;
without a record a stop in the middle would lose every round timed so far. So the worker
rewrites ``partial/group-<digest>.json`` after each round (atomically: a temporary file
renamed over the old one, so a kill leaves the previous round's record, never half of one). It
holds the members' rows as they would read if the group ended there (status ``partial``, the
round count in ``n_samples`` and the message), and the raw rounds needed to go on.

On a stop the runner appends those rows (so ``show`` and the tables have them); ``--resume``
plans the group again and continues the stored rounds in a fresh worker when the same members
are timed by the same code on the same machine (:func:`continuation`), else times it whole
again. Either way the group's finished rows replace every earlier row of its members
(:func:`replace_rows`), so no row is lost and none is there twice.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from hilobench.core.fileio import make_dir, write_bytes_atomic
from hilobench.core.row import Row, Status, is_measured

PARTIAL_DIR = "partial"
#: Status of a row built from an interrupted group's rounds (``--resume`` completes it).
PARTIAL: Final = Status.PARTIAL
VERSION = 1


def record_path(run_path: Path, keys: Iterable[str]) -> Path:
    """Where the record of the group unit with members ``keys`` (in unit order) lives."""
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
    return Path(run_path) / PARTIAL_DIR / f"group-{digest}.json"


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Replace the record at once. No fsync: it is rewritten every round, and only a crash of
    the machine itself (not of the run) could lose the last round."""
    make_dir(path.parent)
    tmp = path.with_name(path.name + f".{os.getpid()}.part")
    tmp.write_text(json.dumps(record, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_record(path: Path) -> dict[str, Any] | None:
    """The record at ``path``; None when there is none or it is not one this code wrote."""
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("version") != VERSION:
        return None
    return rec


def drop_record(path: Path) -> None:
    """Remove a record whose group has finished (or cannot be continued), with any temporary
    file a worker stopped in mid-write left beside it, and the folder once it is empty."""
    for p in [path, *path.parent.glob(f"{path.name}.*.part")]:
        p.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:  # not empty (another group's record) or already gone
        pass


def make_record(
    *, group: str, keys: list[str], stamp: dict[str, Any], rounds: dict[str, Any],
    expected: int, eta_s: float, rows: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """The record after a round: who is timed (``keys`` by member index), by which code and
    machine (``stamp``), the raw ``rounds`` keyed by case key, progress, and the rows."""
    return {"version": VERSION, "group": group, "keys": keys, "stamp": stamp,
            "rounds": rounds, "n": _n(rounds), "expected": expected, "eta_s": eta_s,
            "rows": [dict(r) for r in rows]}  # fmt: skip


def _n(rounds: dict[str, Any]) -> int:
    return min((len(v) for v in rounds.get("samples", {}).values()), default=0)


def continuation(
    rec: dict[str, Any] | None, keys: list[str], live: list[str], stamp: dict[str, Any]
) -> dict[str, Any] | None:
    """The stored rounds to continue, keyed by case key, or None when the group must be timed
    whole again: no record, no round, other members or another member set being timed (one
    failed this time, say), or another code version or machine than the record's."""
    if rec is None or rec.get("keys") != keys or rec.get("stamp") != stamp:
        return None
    rounds = rec.get("rounds") or {}
    parts = ("samples", "order", "calls")
    if _n(rounds) < 1 or any(sorted(rounds.get(p) or {}) != sorted(live) for p in parts):
        return None
    return dict(rounds)


def partial_rows(rec: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The rows a stopped group leaves (none before its first round)."""
    if rec is None or int(rec.get("n") or 0) < 1:
        return []
    return [dict(r) for r in rec.get("rows") or []]


def mark_partial(rows: list[Row], group: str, n: int) -> None:
    """Turn a group's rows as timed so far into rows of an interrupted group (after a few
    rounds they read ``few-samples``: partial too, or ``--resume`` would take them as done)."""
    for r in rows:
        if is_measured(r) and r.get("samples_s"):
            r["status"] = PARTIAL
            r["message"] = (
                f"compare {group}: stopped after {n} round(s); `--resume` completes the group"
            )


def replace_rows(rows_path: Path, keys: set[str], new_rows: list[dict[str, Any]]) -> bool:
    """Write ``new_rows`` in place of every row of ``rows_path`` whose case key is in ``keys``
    (earlier partial rows, or the rows of a group timed whole again), in one atomic rewrite.
    False (nothing written) when no such row is there: the caller appends as usual."""
    try:
        lines = rows_path.read_bytes().splitlines(keepends=True)
    except FileNotFoundError:
        return False
    kept, dropped = [], 0
    for line in lines:
        try:
            key = json.loads(line).get("case_key")
        except (ValueError, AttributeError):
            key = None
        if key in keys:
            dropped += 1
        else:
            kept.append(line if line.endswith(b"\n") else line + b"\n")
    if not dropped:
        return False
    new = [(json.dumps(r, default=str) + "\n").encode() for r in new_rows]
    write_bytes_atomic(rows_path, b"".join(kept + new))
    return True
