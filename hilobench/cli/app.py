"""Command line: parse → Cases → measure → store → render. Thin on purpose.

Every user error ends as one line on stderr and exit code 2; measurements never raise past
the run loop, so an interrupted run keeps every row it finished.
"""

from __future__ import annotations

import importlib
import pkgutil
import signal
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import typer

from hilobench import __version__
from hilobench.cli import commands, flags
from hilobench.cli.rowtable import (
    COLUMNS_HELP,
    FORMATS,
    WIDE_HELP,
    choose_columns,
    print_table,
    render_text,
)
from hilobench.core import options
from hilobench.core.case import DEFAULT_IMPL, Case
from hilobench.core.errors import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    ConfigError,
    check_choice,
)
from hilobench.core.terminal import console
from hilobench.run.lock import RunLock

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Measure vision attention layers and backbones honestly: counts, speed with its "
    "uncertainty, and memory, on this machine.",
)
err = console(stderr=True, width=160)


app.callback()(flags.root)  # --version, listed in --help


def execute(
    cases: list[Case],
    *,
    out_dir: Path | None,
    fmt: str,
    title: str,
    count: bool = True,
    roofline: bool = True,
    append: bool = False,
    columns: list[str] | None = None,
    mem_limit: str | None = None,
    search: bool = False,
) -> list[dict[str, Any]]:
    """Validate every case, then measure them one by one, saving each row as it lands. Ctrl-C
    or SIGTERM keeps the finished rows, writes their tables and exits 130 / 143. ``search``:
    instead of timing each case, find the largest batch within ``mem_limit`` (or the device's
    default limit), probing each batch in a fresh process (:mod:`hilobench.run.maxbatch`)."""
    from hilobench.run.engine import (
        validate_case,
    )  # torch ~1.5 s: only a measuring command needs it
    from hilobench.store.writer import RunDir, check_writable, new_run_dir

    check_choice("format", fmt, FORMATS)
    cases = list({c.key: c for c in cases}.values())  # a case named twice is measured once
    for c in cases:
        validate_case(c, fits=True)
    from hilobench.run.maxbatch import run_searches, search_limit  # light; only a search needs it

    limit = search_limit(cases, mem_limit) if search else None
    target = check_writable(out_dir if out_dir is not None else new_run_dir())

    # torch ~1.5 s (timing), psutil ~20 ms (env): measuring only
    from hilobench.core.plan import SuiteCase, plan
    from hilobench.measure.env import env_id, fingerprint
    from hilobench.measure.timing import set_threads
    from hilobench.run.progress import LineReporter
    from hilobench.run.runner import Runner, stop_on_signals

    threads = set_threads(cases[0].threads)
    env = fingerprint(cases[0].device, threads)
    eid = env_id(env)
    check_existing(target, env, append)
    with RunLock(target), stop_on_signals() as stop:  # one writer per run directory
        warn_emulated(cases)  # after every refusal: a refused run prints its one line only
        run = RunDir(target).create({**env, "env_id": eid})
        # in this process, one case after another; `suite run` isolates each case instead
        runner = Runner(
            run, env_id=eid, isolate=False, reporter=LineReporter(err), roofline=roofline
        )
        try:
            if limit is not None:
                rows = run_searches(runner, cases, limit, lambda m: err.print(m, highlight=False))
            else:
                rows = runner.run_units(plan([SuiteCase(c, c.name, count=count) for c in cases]))
        except KeyboardInterrupt:
            run.write_tables()
            err.print(f"interrupted: {len(runner.rows)} of {len(cases)} rows kept in {run.path}")
            raise typer.Exit(stop.exit_code) from None
        run.write_tables()
    if fmt == "table":
        print_table(console(), rows, title, columns)
        err.print(f"saved {len(rows)} rows to {run.path}")
    else:
        sys.stdout.write(render_text(rows, fmt, columns) + "\n")
    return rows


def check_existing(target: Path, env: dict[str, Any], append: bool) -> None:
    """Rows already in ``target`` are another run's: refuse to add to them unless ``append``,
    and then only from the same machine class (threads and dtype are per row, so may differ)."""
    from hilobench.measure.env import ROW_FIELDS, class_differences, machine_class
    from hilobench.store.writer import RunDir

    run = RunDir(target)
    rows = run.rows() if run.rows_path.exists() else []
    if not rows:
        return
    if not append:
        raise ConfigError(
            f"{target} already holds {len(rows)} row(s) of another run; choose a new --out, "
            "or add --append to add rows to it"
        )
    theirs = {k: v for k, v in machine_class(run.env(), rows).items() if k not in ROW_FIELDS}
    ours = {k: v for k, v in machine_class(env).items() if k not in ROW_FIELDS}
    diff = class_differences(theirs, ours)
    if diff:
        raise ConfigError(
            f"{target} holds rows of another machine class ({'; '.join(diff)}); "
            "rows of different machines do not mix: choose a new --out"
        )


def warn_emulated(cases: Iterable[Case]) -> None:
    """One line per dtype this CPU only emulates, before anything slow starts."""
    from hilobench.measure.capability import emulation_warnings  # torch ~1.5 s

    for line in emulation_warnings(cases):
        err.print(line, markup=False, highlight=False, soft_wrap=True)


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


def layer(
    attn: str = typer.Option(
        "all", help="Attention: one name, a comma list, globs ('*msa'), or 'all'."
    ),
    res: str = typer.Option("224", help="Image resolution(s): N or HxW, comma separated."),
    batch: str | None = typer.Option(None, help=flags.BATCH_HELP),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    dtype: str = typer.Option("float32", help="float32, tf32 (cuda), bfloat16, float16 (cuda)."),
    impl: str = typer.Option(DEFAULT_IMPL, help=flags.IMPL_HELP),
    threads: int | None = typer.Option(None, help="CPU threads (default: physical cores)."),
    mode: str = typer.Option("infer", help=flags.MODE_HELP),
    train: bool = typer.Option(False, "--train", help=flags.TRAIN_HELP),
    backend: str = typer.Option("eager", help=flags.BACKEND_HELP),
    compile: bool = typer.Option(False, "--compile", help=flags.COMPILE_HELP),
    max_batch: bool = typer.Option(False, "--max-batch", help=flags.MAX_BATCH_HELP),
    mem_limit: str | None = typer.Option(None, "--mem-limit", help=flags.MEM_LIMIT_HELP),
    budget: float = typer.Option(3.0, help=flags.BUDGET_HELP),
    roofline: bool = typer.Option(True, help=flags.ROOFLINE_HELP),
    out_dir: Path | None = typer.Option(None, "--out", help="Run directory for the results."),
    append: bool = typer.Option(False, "--append", help=flags.APPEND_HELP),
    fmt: str = typer.Option("table", "--format", help="table, json, csv or md."),
    columns: str | None = typer.Option(None, "--columns", help=COLUMNS_HELP),
    wide: bool = typer.Option(False, "--wide", help=WIDE_HELP),
    plugin: list[Path] = typer.Option([], "--plugin", metavar="FILE", help=flags.PLUGIN_HELP),
    **knobs: Any,
) -> None:
    """Benchmark single attention layers where the paper does: the 1/16-scale map of an image."""
    from hilobench.attention import available_attentions, resolve_attentions  # torch ~1.5 s

    load_plugins(plugin)  # loaded already when run through main(), before the flags were built

    names = (
        available_attentions()
        if attn.strip() == "all"
        else resolve_attentions(flags.split_list(attn))
    )
    if not names:
        raise ConfigError(f"no attention given; choose from: {', '.join(available_attentions())}")
    given = options.given(knobs)
    flags.check_layers(names, given, available_attentions())
    shown = choose_columns(columns, wide)
    modes = flags.parse_modes(train, mode)
    batches = flags.parse_batch_option(batch, max_batch, mem_limit)
    backends = flags.parse_backends(backend, compile, modes)
    cases = [
        Case(
            "layer",
            n,
            res=r,
            batch=b,
            device=device,
            dtype=dtype,
            impl=i,
            mode=m,
            threads=threads,
            backend=be,
            options=tuple(options.taken("layer", n, given).items()),
            budget=budget,
        )  # fmt: skip
        for r in flags.parse_res_list(res)
        for n in names
        for m in modes
        for i in flags.parse_impls(impl)
        for b in batches  # mode, impl, batch, backend: a suite's expansion order
        for be in backends
    ]
    execute(
        cases,
        out_dir=out_dir,
        fmt=fmt,
        title="attention layers",
        roofline=roofline and not max_batch,
        append=append,
        columns=shown,
        mem_limit=mem_limit,
        search=max_batch,
    )


def model(
    names: str | None = typer.Argument(
        None,
        help="Model name(s), comma separated: ours, timm's full names (convnext_tiny), globs "
        "('litv2_*') or timm:<name>; see --list.",
    ),
    list_: bool = typer.Option(False, "--list", help="List the models and exit."),
    res: str | None = typer.Option(None, help="Resolution(s) N or HxW (model default: 224/384)."),
    batch: str | None = typer.Option(None, help=flags.BATCH_HELP),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    dtype: str = typer.Option("float32", help="float32, tf32 (cuda), bfloat16, float16 (cuda)."),
    impl: str = typer.Option(DEFAULT_IMPL, help=flags.IMPL_HELP),
    threads: int | None = typer.Option(None, help="CPU threads (default: physical cores)."),
    mode: str = typer.Option("infer", help=flags.MODE_HELP),
    train: bool = typer.Option(False, "--train", help=flags.TRAIN_HELP),
    backend: str = typer.Option("eager", help=flags.BACKEND_HELP),
    compile: bool = typer.Option(False, "--compile", help=flags.COMPILE_HELP),
    channels_last: bool = typer.Option(False, "--channels-last", help="NHWC memory format."),
    max_batch: bool = typer.Option(False, "--max-batch", help=flags.MAX_BATCH_HELP),
    mem_limit: str | None = typer.Option(None, "--mem-limit", help=flags.MEM_LIMIT_HELP),
    budget: float = typer.Option(5.0, help=flags.BUDGET_HELP),
    roofline: bool = typer.Option(True, help=flags.ROOFLINE_HELP),
    out_dir: Path | None = typer.Option(None, "--out", help="Run directory for the results."),
    append: bool = typer.Option(False, "--append", help=flags.APPEND_HELP),
    fmt: str = typer.Option("table", "--format", help="table, json, csv or md."),
    columns: str | None = typer.Option(None, "--columns", help=COLUMNS_HELP),
    wide: bool = typer.Option(False, "--wide", help=WIDE_HELP),
    plugin: list[Path] = typer.Option([], "--plugin", metavar="FILE", help=flags.PLUGIN_HELP),
    **knobs: Any,
) -> None:
    """Benchmark full backbones: LITv2 / LITv1 / PVT built here, the paper's others from timm."""
    from hilobench.models import available_models, get_model, impls_for, resolve_models

    load_plugins(plugin)  # loaded already when run through main(), before the flags were built
    if list_:
        flags.print_models(available_models())
        return
    listed = resolve_models(flags.split_list(names or ""))
    if not listed:
        given = f" in {names!r}" if names else ""
        raise ConfigError(f"no model given{given}; name one, see `hilobench model --list`")
    # every named model gets the knobs; one that does not take them refuses when it is built
    opts = tuple(options.given(knobs).items())
    shown = choose_columns(columns, wide)
    modes = flags.parse_modes(train, mode)
    batches = flags.parse_batch_option(batch, max_batch, mem_limit)
    backends = flags.parse_backends(backend, compile, modes)
    cases = []
    for name in listed:
        entry = get_model(name)
        for r in flags.parse_res_list(res) if res else [(entry.default_res, entry.default_res)]:
            for m in modes:  # mode, impl, batch: a suite's expansion order
                for i in impls_for(entry, impl):
                    cases += [
                        Case("model", name, res=r, batch=b, device=device, dtype=dtype,
                             impl=i, mode=m, threads=threads, backend=be,
                             channels_last=channels_last, options=opts, budget=budget)
                        for b in batches for be in backends
                    ]  # fmt: skip
    execute(
        cases,
        out_dir=out_dir,
        fmt=fmt,
        title="backbones",
        roofline=roofline and not max_batch,
        append=append,
        columns=shown,
        mem_limit=mem_limit,
        search=max_batch,
    )


def install_commands(command: str | None = None) -> None:
    """(Re)build ``layer`` and ``model`` from the options table as it is now. Before running one
    of them, load its registry first, so that plug-in knobs get their flags and the help names
    who takes each knob; other commands never import torch for this."""
    if command == "layer":
        from hilobench.attention import available_attentions  # torch ~1.5 s

        available_attentions()
    elif command == "model":
        from hilobench.models import available_models  # torch ~1.5 s

        available_models()
    for name, func, after in (("layer", layer, "res"), ("model", model, "batch")):
        built = flags.with_knobs(func, name, after)
        infos = app.registered_commands
        at = next((i for i, c in enumerate(infos) if c.name == name), len(infos))
        infos[at : at + 1] = []
        app.command(name)(built)
        infos.insert(at, infos.pop())


def _register_commands() -> None:
    """Attach the commands defined in ``hilobench.cli.commands`` (suite, show, report,
    compare...)."""
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"hilobench.cli.commands.{info.name}").register(app)


install_commands()
_register_commands()


class Terminated(KeyboardInterrupt):
    """SIGTERM outside a run's own handling: unwind like Ctrl-C (locks released, temporary
    files removed by their ``finally`` blocks), then exit 143."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Iterable[str] | None = None) -> None:
    """Entry point: maps user errors to one line + exit 2, Ctrl-C to exit 130, SIGTERM to 143."""
    own = argv is None and threading.current_thread() is threading.main_thread()
    if own:
        signal.signal(signal.SIGTERM, _on_sigterm)  # a process of its own: SIGTERM unwinds too
    try:
        code = _main(list(argv) if argv is not None else sys.argv[1:])
    except Terminated:  # a signal while a message was being printed
        code = EXIT_TERMINATED
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    if own:  # the work is done or given up: a late signal must not turn the exit into a kill
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)
    sys.exit(code)


def _main(args: list[str]) -> int:
    """Run one command line; the exit code."""
    if args in (["--version"], ["-V"]):
        print(f"hilobench {__version__}")
        return 0
    try:
        load_plugins(plugin_paths(args))  # before the commands: their knobs get flags
        install_commands(args[0] if args else None)
        command = flags.readable_metavars(typer.main.get_command(app))
        rv = command.main(args=args, prog_name="hilobench", standalone_mode=False)
    except ConfigError as e:
        return _die(str(e))
    except Terminated:
        err.print("terminated")
        return EXIT_TERMINATED
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted")
        return EXIT_INTERRUPTED
    except typer.TyperException as e:  # typer's own usage errors (unknown option, bad type)
        fmt = getattr(e, "format_message", None)
        return _die(fmt() if callable(fmt) else str(e), int(getattr(e, "exit_code", 2) or 2))
    return rv if isinstance(rv, int) else 0


def _die(message: str, code: int = EXIT_USAGE) -> int:
    """Print a user error as one line; the exit code to end with."""
    sys.stderr.write(f"hilobench: error: {' '.join(message.split())}\n")
    return code
