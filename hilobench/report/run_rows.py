"""Run directories as the report reads them: their rows, the environment they were measured in,
a name per run and a label per run that are unique within the set being reported.

Every run keeps its own series, column and reference rows, even beside another run of the same
machine: two runs are two measurements (another hour, another commit), and dividing one run's
rows by another run's reference would hide the drift between them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hilobench.core.errors import ConfigError
from hilobench.measure.env import machine_class, machine_class_label
from hilobench.store.reader import load_rows, read_env


@dataclass
class ReportedRun:
    """One run directory: its rows and the environment they were measured in. ``machine``
    names its machine class, ``name`` the run (its directory), ``label`` its column in a
    merged table: the machine alone when no other run shares it, else machine and run."""

    path: Path
    env: dict[str, Any]
    rows: list[dict[str, Any]]
    label: str = ""
    machine: str = ""
    name: str = ""


def load_runs(paths: Iterable[Path | str]) -> list[ReportedRun]:
    """Read run directories (checked by :mod:`hilobench.store.reader`: a malformed file is a
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
        r.machine = short if len(shorts[short]) == 1 else machine_class_label(cls, dtype=False)
    names = _run_names([r.path for r in runs])
    per_machine: dict[str, int] = {}
    for r in runs:
        per_machine[r.machine] = per_machine.get(r.machine, 0) + 1
    for r, name in zip(runs, names, strict=True):
        r.name = name
        r.label = r.machine if per_machine[r.machine] == 1 else f"{r.machine} · {name}"
    return runs


def _run_names(paths: list[Path]) -> list[str]:
    """A short name per run, unique within the set: its directory's name, with as many parent
    directories as it takes to tell runs apart (a numbered suffix for a path given twice)."""
    dirs = [p if p.is_dir() else p.parent for p in paths]
    names = [d.name or str(d) for d in dirs]
    depth = 1
    while len(set(names)) < len(names) and depth < max(len(d.parts) for d in dirs):
        depth += 1
        names = ["/".join(d.parts[-depth:]) for d in dirs]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} #{seen[n]}")
    return out


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
