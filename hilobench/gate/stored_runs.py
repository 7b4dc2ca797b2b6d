"""Stored runs as the judge reads them: rows by case key and the environment.

Loading (through :mod:`hilobench.store.reader`) refuses what cannot be judged: a missing,
unreadable or malformed baseline or one of another row schema (exit 3), a candidate that is not
a run directory, holds malformed files or rows of another schema (exit 2). Whether two runs' speeds
are comparable is decided by their machine class, not by the exact environment hash.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hilobench.core.errors import ConfigError
from hilobench.core.row import REQUIRED_COLUMNS, is_measured
from hilobench.gate.baseline import read_baseline_rows
from hilobench.gate.gate_errors import BaselineError
from hilobench.measure import env as menv
from hilobench.store.reader import ROWS, load_rows, read_env, read_json

Row = dict[str, Any]


@dataclass
class JudgedRun:
    """One side of a judgement: rows by case key, plus its environment."""

    path: str
    rows: dict[str, Row]
    env: dict[str, Any]
    env_id: str
    deterministic_only: bool = False
    claims: list[dict[str, Any]] = field(default_factory=list)


def pick_rows(rows: Iterable[Row]) -> dict[str, Row]:
    """Rows by case key; for a key measured twice (resumed runs) the last measured row wins."""
    out: dict[str, Row] = {}
    for r in rows:
        key = r["case_key"]
        if key in out and is_measured(out[key]) and not is_measured(r):
            continue
        out[key] = r
    return out


def load_run(path: Path | str, *, role: str = "base") -> JudgedRun:
    """Load a run directory (or, as the base, a baseline file); refuse what cannot be judged.

    Problems with the baseline raise :class:`BaselineError` (exit 3); a candidate that is not
    there is a usage error (exit 2).
    """
    p = Path(path)
    fail: type[Exception] = BaselineError if role == "base" else ConfigError
    if not p.exists():
        raise fail(f"{role} {str(p)!r} does not exist")
    if p.is_file() and p.suffix == ".json":
        if role != "base":
            raise ConfigError(f"the candidate must be a run directory, not {str(p)!r}")
        return JudgedRun(str(p), read_baseline_rows(p), {}, "", deterministic_only=True)
    if p.is_file():
        raise fail(f"{role} {str(p)!r} is neither a run directory nor a baseline .json file")
    if not (p / ROWS).exists():
        raise fail(f"{role} {str(p)!r} has no {ROWS}: not a run directory")
    try:
        raw = load_rows(p, required=REQUIRED_COLUMNS)  # the judge reads every column
        env = read_env(p)
        claims = _read_claims(p / "claims.json")
    except ConfigError as e:  # malformed, or rows of another schema: a base is unusable (3)
        raise fail(f"{role}: {e}") from None
    if not raw:
        raise fail(f"{role} {str(p)!r} holds no rows")
    eid = str(env.get("env_id") or (menv.env_id(env) if env else ""))
    return JudgedRun(str(p), pick_rows(raw), env, eid, claims=claims)


def _read_claims(path: Path) -> list[dict[str, Any]]:
    """The claims a suite run kept beside its rows ([] when none): a list of objects."""
    if not path.exists():
        return []
    claims = read_json(path, "claims file")
    if not isinstance(claims, list) or not all(isinstance(c, dict) for c in claims):
        raise ConfigError(f"claims file {str(path)!r} must hold a JSON list of objects")
    return claims


def machine_of(run: JudgedRun) -> dict[str, str]:
    """The machine class a run was measured on."""
    return menv.machine_class(run.env, run.rows.values())


def env_differences(base: JudgedRun, cand: JudgedRun) -> list[str]:
    """Why two runs' machine classes differ (empty when one class, or when base has no timings).

    Only the class (CPU model, physical cores, threads, GPU, torch, CUDA, dtype) decides:
    ``env_id`` also hashes RAM bytes and the kernel build, which vary within one VM type.
    """
    if base.deterministic_only:
        return []
    if not base.env or not cand.env:
        return [f"environment not recorded in {base.path if not base.env else cand.path}"]
    return menv.class_differences(machine_of(base), machine_of(cand))


def env_info_differences(base: JudgedRun, cand: JudgedRun) -> list[str]:
    """Recorded differences that leave the machine class alone (RAM size, OS string, ...)."""
    if base.deterministic_only or not base.env or not cand.env:
        return []
    return menv.informational_differences(base.env, cand.env)
