"""What a stopped ``suite run`` tells its user: the command line that finishes the run, printed
at any stop after start-up (the lock taken, the machine fingerprinted, measuring)."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

err = Console(stderr=True)


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


@contextmanager
def hint_on_stop(again: str) -> Iterator[None]:
    """Ctrl-C or SIGTERM at any moment after start-up (taking the lock, fingerprinting the
    machine, measuring) ends with the command that finishes the run and exit 130 / 143."""
    from hilobench.run.runner import stop_on_signals

    with stop_on_signals() as stop:
        try:
            yield
        except KeyboardInterrupt:
            err.print(f"interrupted; finish with `{again}`", markup=False, highlight=False,
                      soft_wrap=True)  # fmt: skip
            raise typer.Exit(stop.exit_code) from None
