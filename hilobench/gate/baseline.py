"""The committed deterministic baseline (``results/baselines/<suite>.json``): counts per case.

Counts and the CPU peak tensor bytes do not depend on the machine, so they can be committed
and checked exactly on any machine without timing anything; speed never comes from here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hilobench.core.case import Case
from hilobench.core.errors import ConfigError
from hilobench.core.fileio import write_text_atomic
from hilobench.core.row import Row
from hilobench.gate.gate_errors import BaselineError
from hilobench.gate.policy import DETERMINISTIC
from hilobench.store.reader import read_json

#: Format marker of a committed deterministic baseline file.
BASELINE_KIND = "hilobench-deterministic-baseline"
BASELINE_SCHEMA = 1


def baseline_path(suite_path: Path | str, root: Path | str = ".") -> Path:
    """Where a suite's committed baseline lives: ``results/baselines/<suite stem>.json``."""
    return Path(root) / "results" / "baselines" / f"{Path(suite_path).stem}.json"


def read_baseline_rows(path: Path) -> dict[str, dict[str, Any]]:
    """The baseline's cases as rows by case key (``status: ok`` plus the figures)."""
    try:
        data = read_json(path, "baseline")
    except ConfigError as e:
        raise BaselineError(str(e)) from None
    if not isinstance(data, dict) or data.get("kind") != BASELINE_KIND:
        raise BaselineError(f"{str(path)!r} is not a hilobench baseline file")
    if data.get("schema") != BASELINE_SCHEMA:
        raise BaselineError(
            f"baseline {str(path)!r} has schema {data.get('schema')!r}; this hilobench reads "
            f"schema {BASELINE_SCHEMA}: regenerate it with `hilobench gate --update-baseline`"
        )
    cases = data.get("cases") or {}
    if not isinstance(cases, dict) or not all(isinstance(f, dict) for f in cases.values()):
        raise BaselineError(f"baseline {str(path)!r}: 'cases' must map case keys to objects")
    rows = {key: {"case_key": key, "status": "ok", **figures} for key, figures in cases.items()}
    if not rows:
        raise BaselineError(f"baseline {str(path)!r} lists no cases")
    return rows


def deterministic_row(case: Case, *, count: bool = True, env_id: str = "") -> Row:
    """The row of ``case`` without timing: identity, counts and memory, exactly as the suite
    runner measures them (:func:`hilobench.run.engine.run_case` with ``timed=False``)."""
    from hilobench.run.engine import run_case  # imports torch: only computing a baseline needs it

    return run_case(case, env_id=env_id, count=count, timed=False)


def compute_baseline(suite_path: Path | str) -> dict[str, Any]:
    """Deterministic figures of every case of a suite (no timing), as committed."""
    import torch  # only for its version; computing the rows imports it anyway

    from hilobench.suite.loader import load_suite  # with yaml ~25 ms: the CLI imports this module

    suite = load_suite(suite_path)
    cases: dict[str, Any] = {}
    for sc in suite.cases:
        row = deterministic_row(sc.case, count=sc.count)
        figures = {k: row.get(k) for k in DETERMINISTIC if row.get(k) is not None}
        if sc.case.device.startswith("cuda"):
            figures.pop("peak_mem_bytes", None)
        cases[sc.case.key] = {"id": sc.id, "label": sc.case.label(), **figures}
    return {
        "kind": BASELINE_KIND,
        "schema": BASELINE_SCHEMA,
        "suite": Path(suite_path).name,
        "torch": torch.__version__.split("+")[0],
        "note": "deterministic figures only; regenerate with "
        "`hilobench gate --update-baseline --suite <suite>` and review the diff",
        "cases": cases,
    }


def computed_rows(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A computed baseline's cases as candidate rows (for ``--check-baseline``)."""
    return {k: {"case_key": k, "status": "ok", **v} for k, v in data["cases"].items()}


def write_baseline(data: dict[str, Any], path: Path) -> None:
    """Write the baseline file whole or not at all (a one-line ConfigError when it cannot)."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
