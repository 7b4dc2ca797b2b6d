"""The flags of the measuring commands (``layer``, ``model``, and any command that measures
cases the same way): their help texts and the parsing of list-valued flags (``--res``,
``--batch``, ``--impl``, ``--mode``); :mod:`hilobench.cli.caseopts` declares the options.

One parser per flag, so a command that sweeps batches or resolutions takes them as ``layer``
and ``model`` do; user errors are ConfigError (one line, exit 2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from hilobench import __version__
from hilobench.core import options
from hilobench.core.case import expand_impls, parse_batches, parse_hw
from hilobench.core.errors import ConfigError, check_choice
from hilobench.core.terminal import console, grid, print_fitted

if TYPE_CHECKING:  # the model registry imports torch
    from hilobench.models import ModelEntry

BUDGET_HELP = (
    "Seconds per case, all in: count trace, memory pass, warm-up and timed samples. Long calls "
    "get fewer samples and a wider interval instead of an overrun; only the build, a "
    "backend's preparation (compile, export) and parity check and, when one call outlasts the "
    "budget, that call (the memory pass) plus one timed sample come on top."
)
IMPL_HELP = (
    "fused (the default: scaled_dot_product_attention; timm models as timm sets them), "
    "reference (the published formulation, as the paper suites measure) or both."
)
BATCH_HELP = "Batch size(s), comma separated: 64 or 1,8,64 (default 64)."
MODE_HELP = "infer, train (a training step instead of inference) or both, as a suite's mode."
TRAIN_HELP = (
    "Time forward + backward + AdamW step instead of inference (= --mode train; --mode both "
    "measures both)."
)
MAX_BATCH_HELP = (
    "Find the largest batch whose peak memory fits --mem-limit: doubling, then bisection, each "
    "probe in a fresh process; one row per case with max_batch and the limit used."
)
MEM_LIMIT_HELP = (
    "Memory limit of --max-batch, e.g. 2GB, 512MiB, 1.5GiB (default: the device's free memory "
    "on CUDA, half the available RAM on the CPU)."
)
APPEND_HELP = "Add rows to an --out that holds rows already (same machine class only)."
ROOFLINE_HELP = (
    "Measure (once per machine, then cached) the GEMM peak for the roofline column; "
    "--no-roofline skips it."
)
PLUGIN_HELP = (
    "A Python file to import first (repeatable): attentions (@register_attention) and "
    "models (register_model) it registers can be named, with their knobs' flags."
)


def print_version(value: bool) -> None:
    """``--version``: print it and end (an eager option, answered before any command)."""
    if value:
        print(f"hilobench {__version__}")
        raise typer.Exit()


def root(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=print_version,
        is_eager=True,
        help="Print hilobench's version and exit.",
    ),
) -> None:
    """The options before any command (``main`` answers a bare ``--version`` before the
    commands are even built; this puts it in ``--help``)."""


#: What help shows for a value of each type, as typer (``int``, ``Path``) or click (``integer``,
#: ``path``) names it; typer's own would be ``<float>``, ``<list[Path]>``.
METAVARS: dict[str, str] = {
    "int": "INT", "integer": "INT", "float": "NUMBER", "str": "TEXT", "text": "TEXT",
    "path": "PATH", "Path": "PATH",
}  # fmt: skip


def readable_metavars(command: Any) -> Any:
    """Show every value of ``command`` (and of its subcommands) in help as a plain word:
    ``--budget NUMBER``, ``RUN_DIRS PATH...``; a flag, ``--help`` included, shows none. A
    metavar set by hand (``FILE``) and a list of choices stay."""
    for sub in getattr(command, "commands", {}).values():
        readable_metavars(sub)
    # duck-typed: typer may carry its own copy of click, whose classes are not click's
    help_option = command.get_help_option(command.context_class(command))
    for p in [*command.params, *([help_option] if help_option else [])]:
        choice = getattr(getattr(p, "type_descriptor", None), "is_choice", False)
        if p.metavar is not None or choice:
            continue
        if getattr(p, "is_flag", False):
            word = ""
        else:
            bare = p.bare_type() if hasattr(p, "bare_type") else getattr(p.type, "name", "")
            many = bare.startswith("list[") or getattr(p, "multiple", False) or p.nargs != 1
            word = METAVARS.get(bare.removeprefix("list[").removesuffix("]"), "VALUE")
            word += "..." if many else ""
        # an argument is named in the usage line: RUN_DIRS..., not {run_dirs}...
        p.metavar = word if p.param_type_name == "option" else f"{p.name or 'value'}".upper()
        p.display_type_rich = lambda ctx, word=word: word  # typer's help column
    return command


def split_list(text: str) -> list[str]:
    return [p.strip() for p in str(text).split(",") if p.strip()]


def check_layers(names: list[str], given: dict[str, Any], available: list[str]) -> None:
    """Every attention name known; every given knob taken by at least one of them (it applies
    to those that take it) and with the knobs it needs beside it."""
    for n in names:
        check_choice("attention", n, available)
    options.check_taken("layer", names, given, lambda k: options.get(k).spelled(given[k]))
    options.check_together("layer", given)


def parse_impls(impl: str) -> list[str]:
    return expand_impls(impl)


def parse_res_list(text: str) -> list[tuple[int, int]]:
    items = split_list(text)
    if not items:
        raise ConfigError(f"bad resolution {text!r}; expected N or HxW, e.g. 224 or 800x1280")
    return [parse_hw(r) for r in items]


def parse_modes(train: bool, mode: str) -> list[str]:
    """``--mode infer|train|both`` as a suite's ``mode`` field; ``--train`` is ``--mode train``:
    the training step is measured instead of inference, on ``layer`` and ``model`` alike."""
    modes = ["infer", "train"] if mode == "both" else [mode]
    check_choice("mode", mode, ("infer", "train", "both"))
    if train and mode != "infer" and mode != "train":
        raise ConfigError(f"--train is --mode train; it contradicts --mode {mode}")
    return ["train"] if train else modes


BACKEND_HELP = (
    f"Runtime(s), comma separated: {', '.join(options.BACKENDS)}. Export/compile time is the "
    "row's prepare_s, outside the timed step; each row checks parity with eager."
)
COMPILE_HELP = "= --backend compile (torch.compile; compile time reported apart)."


def parse_backends(text: str, compile: bool, modes: list[str]) -> list[str]:
    """``--backend eager,onnxruntime`` → the backends, checked; ``--compile`` is ``--backend
    compile`` (a note says so). Runtimes infer only: training with one is refused."""
    names = split_list(text)
    if not names:
        raise ConfigError(f"no backend given; choose from: {', '.join(options.BACKENDS)}")
    for n in names:
        check_choice("backend", n, list(options.BACKENDS))
    if compile:
        if names != ["eager"] and names != ["compile"]:
            raise ConfigError(f"--compile is --backend compile; it contradicts --backend {text}")
        typer.echo("note: --compile is --backend compile", err=True)
        names = ["compile"]
    infer_only = [n for n in names if not options.BACKENDS[n].train]
    if "train" in modes and infer_only:
        trains = ", ".join(b.name for b in options.BACKENDS.values() if b.train)
        raise ConfigError(
            f"backend {infer_only[0]!r} runs inference only; training (--train) takes {trains}"
        )
    return list(dict.fromkeys(names))


def parse_batch_option(batch: str | None, max_batch: bool, mem_limit: str | None) -> list[int]:
    """The batches to measure; with ``--max-batch`` the search picks them, so a --batch list
    is refused, as is --mem-limit without --max-batch."""
    if max_batch and batch is not None:
        raise ConfigError("--max-batch searches the batch; give it or --batch, not both")
    if mem_limit is not None and not max_batch:
        raise ConfigError("--mem-limit is the limit of --max-batch; add --max-batch")
    return [1] if max_batch else parse_batches(batch if batch is not None else "64")


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` overrides of a suite, each VALUE read as YAML (``batch=[1, 8]``)."""
    import yaml  # ~15 ms at start-up: only --set needs it

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"bad --set {item!r}; expected KEY=VALUE, e.g. budget=2")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            raise ConfigError(
                f"bad --set {item!r}: {value.strip()!r} is not a YAML value; "
                "expected KEY=VALUE, e.g. budget=2 or batch=[1, 8]"
            ) from None
    return out


def print_models(entries: list[ModelEntry]) -> None:
    """``model --list``: every row, with where it comes from and timm's own name (which
    reaches the row too) or why it is unavailable."""
    body = []
    for e in entries:
        note = e.reason if e.source == "unavailable" else (e.timm_name or "")
        body.append([e.name, e.display, e.family, e.source, str(e.default_res), note])
    heads = ["name", "paper name", "family", "source", "res", "note"]
    text = [True, True, True, True, False, True]
    print_fitted(console(), grid("models", heads, body, text))
