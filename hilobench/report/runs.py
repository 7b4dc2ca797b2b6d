"""Run directories as the report reads them: their rows, the environment they were measured in,
and a label per machine class that is unique within the set being reported."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hilobench.errors import ConfigError
from hilobench.measure.env import machine_class, machine_class_label
from hilobench.rundir_io import load_rows, read_env


@dataclass
class ReportedRun:
    """One run directory: its rows and the environment they were measured in."""

    path: Path
    env: dict[str, Any]
    rows: list[dict[str, Any]]
    label: str = ""


def load_runs(paths: Iterable[Path | str]) -> list[ReportedRun]:
    """Read run directories (checked by :mod:`hilobench.rundir_io`: a malformed file is a
    one-line ConfigError); each gets an environment label unique within the set."""
    runs = []
    for p in paths:
        p = Path(p)
        rows = load_rows(p)
        if not rows:
            raise ConfigError(f"{str(p)!r} holds no rows: nothing to report or merge")
        if p.is_dir():
            env = read_env(p)
        else:  # a rows.jsonl file: its environment lies beside it
            env = read_env(p.parent)
        runs.append(ReportedRun(p, env, rows))
    if not runs:
        raise ConfigError("no run directories given")
    # One label per machine class (dtype aside: rows keep their own dtype column), so runs
    # of one machine type share a column even when RAM bytes or the kernel build differ.
    classes = {id(r): run_class(r) for r in runs}
    shorts: dict[str, set[str]] = {}
    for r in runs:
        short = env_label(classes[id(r)])
        shorts.setdefault(short, set()).add(machine_class_label(classes[id(r)], dtype=False))
    for r in runs:
        cls = classes[id(r)]
        short = env_label(cls)
        r.label = short if len(shorts[short]) == 1 else machine_class_label(cls, dtype=False)
    return runs


def run_class(run: ReportedRun) -> dict[str, str]:
    """The machine class of a run, its threads and dtypes taken from its rows."""
    return machine_class(run.env, run.rows)


def env_label(env: dict[str, Any]) -> str:
    """Short name of the machine a run measured: the GPU, else the CPU and its threads."""
    if env.get("gpu_name"):
        return str(env["gpu_name"])
    cpu = str(env.get("cpu_model") or "unknown CPU")
    for noise in ("(R)", "(TM)", " CPU", " Processor"):
        cpu = cpu.replace(noise, "")
    threads = env.get("threads")
    return " ".join(cpu.split()) + (f" ({threads} threads)" if threads else "")
