"""Command line: the typer app, its commands (one module each under ``hilobench.cli.commands``)
and the entry point. Thin on purpose.

The commands are built once per command line, after the ``--plugin`` files are loaded, so the
knobs a plug-in declares get their flags. Every user error ends as one line on stderr and exit
code 2; Ctrl-C and SIGTERM end with 130 / 143 through the run's own stop signals
(:mod:`hilobench.run.signals`), so an interrupted run keeps every row it finished.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import threading
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path

import typer

from hilobench import __version__
from hilobench.cli import commands, flags
from hilobench.core.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE, ConfigError
from hilobench.core.terminal import console
from hilobench.run.signals import current_stop, stop_on_signals

err = console(stderr=True, width=160)

#: Commands listed first in help; the others follow in name order.
FIRST = ("layer", "model")
#: The registries a command loads before its flags are built, so that the knobs their entries
#: declare get flags and help names who takes each knob; other commands never import torch
#: for this.
REGISTRIES = {
    "layer": ("hilobench.attention",),
    "model": ("hilobench.models",),
    "profile": ("hilobench.attention", "hilobench.models"),
}
_LOADERS = {"hilobench.attention": "available_attentions", "hilobench.models": "available_models"}


def build_app(command: str | None = None) -> typer.Typer:
    """The typer app with every command of ``hilobench.cli.commands``, built from the options
    table as it is now (after the registries ``command`` needs are loaded)."""
    for module in REGISTRIES.get(command or "", ()):
        getattr(importlib.import_module(module), _LOADERS[module])()  # torch ~1.5 s
    app = typer.Typer(
        add_completion=False,
        pretty_exceptions_enable=False,
        no_args_is_help=True,
        help="Measure vision attention layers and backbones honestly: counts, speed with its "
        "uncertainty, and memory, on this machine.",
    )
    app.callback()(flags.root)  # --version, listed in --help
    names = sorted(m.name for m in pkgutil.iter_modules(commands.__path__))
    for name in sorted(names, key=lambda n: (n not in FIRST, FIRST.index(n) if n in FIRST else 0)):
        importlib.import_module(f"hilobench.cli.commands.{name}").register(app)
    return app


def plugin_paths(args: list[str]) -> list[str]:
    """The files named by ``--plugin FILE`` / ``--plugin=FILE`` in a command line."""
    found = []
    for i, a in enumerate(args):
        if a == "--":
            break
        if a == "--plugin" and i + 1 < len(args):
            found.append(args[i + 1])
        elif a.startswith("--plugin="):
            found.append(a.split("=", 1)[1])
    return found


def load_plugins(paths: Iterable[str | Path]) -> None:
    """Import each plug-in file (one line and exit 2, naming the file, if one fails)."""
    paths = list(paths)
    if paths:
        from hilobench.core.plugins import load_plugin_file  # the files themselves import torch

        for path in paths:
            load_plugin_file(path)


def main(argv: Iterable[str] | None = None) -> None:
    """Entry point: maps user errors to one line + exit 2, Ctrl-C to exit 130, SIGTERM to 143.

    A process of its own holds the stop signals for its whole life (SIGTERM unwinds like
    Ctrl-C: locks released, temporary files removed by their ``finally`` blocks) and ignores
    them once the work is done or given up, so a late signal cannot turn the exit into a kill.
    """
    own = argv is None and threading.current_thread() is threading.main_thread()
    with stop_on_signals(restore=False) if own else nullcontext():
        try:
            code = _main(list(argv) if argv is not None else sys.argv[1:])
        except KeyboardInterrupt:  # a signal while a message was being printed
            code = _stop_code()
    sys.exit(code)


def _stop_code() -> int:
    """The exit code of a stop: 128 + the signal received (130 without one)."""
    stop = current_stop()
    return stop.exit_code if stop is not None else EXIT_INTERRUPTED


def _main(args: list[str]) -> int:
    """Run one command line; the exit code."""
    if args in (["--version"], ["-V"]):
        print(f"hilobench {__version__}")
        return 0
    try:
        load_plugins(plugin_paths(args))  # before the commands: their knobs get flags
        app = build_app(args[0] if args else None)
        command = flags.readable_metavars(typer.main.get_command(app))
        rv = command.main(args=args, prog_name="hilobench", standalone_mode=False)
    except ConfigError as e:
        return _die(str(e))
    except (typer.Abort, KeyboardInterrupt):
        code = _stop_code()
        err.print("terminated" if code == EXIT_TERMINATED else "interrupted")
        return code
    except typer.TyperException as e:  # typer's own usage errors (unknown option, bad type)
        fmt = getattr(e, "format_message", None)
        return _die(fmt() if callable(fmt) else str(e), int(getattr(e, "exit_code", 2) or 2))
    return rv if isinstance(rv, int) else 0


def _die(message: str, code: int = EXIT_USAGE) -> int:
    """Print a user error as one line; the exit code to end with."""
    sys.stderr.write(f"hilobench: error: {' '.join(message.split())}\n")
    return code
