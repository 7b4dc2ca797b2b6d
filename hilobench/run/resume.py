"""The command line that finishes a stopped ``suite run``: the run session prints it at any stop
after start-up (the lock taken, the machine fingerprinted, measuring) and when cases are left
open on a cluster."""

from __future__ import annotations

import shlex
from pathlib import Path


def resume_command(
    spec: str,
    target: Path,
    device: str | None,
    budget: float | None,
    sets: list[str],
    filter_: str | None,
    isolate: bool,
    plugins: list[Path] | None = None,
    extra: list[str] | None = None,
) -> str:
    """The command line that finishes this run, with the options that shape its cases."""
    args = ["hilobench", "suite", "run", spec, *(extra or [])]
    for path in plugins or []:
        args += ["--plugin", str(path)]
    if device is not None:
        args += ["--device", device]
    if budget is not None:
        args += ["--budget", f"{budget:g}"]
    for item in sets:
        args += ["--set", item]
    if filter_:
        args += ["--filter", filter_]
    if not isolate:
        args.append("--no-isolate")
    return shlex.join(args + ["--resume", "--out", str(target)])
