"""``hilobench profile``: where the time of one step goes, by module, by kind and by operator.

Takes the cases ``layer`` and ``model`` take, with the same flags and the same options table
(``--attn hilo --tokens 64x64 --alpha 0.5 …`` for a layer; a model name, with ``--dtm conv``
and the like, for a backbone). Several attentions or implementations (``--attn hilo,swmsa``)
are profiled one after the other and printed side by side. Parsing and printing only; the
work lives in :mod:`hilobench.profile`.

The CLI imports this module at start-up: torch and the registries load inside the command.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer

from hilobench.cli import caseopts
from hilobench.cli.caseopts import CaseFlags
from hilobench.cli.execute import say
from hilobench.cli.rowtable import FORMATS
from hilobench.core import options
from hilobench.core.case import Case
from hilobench.core.errors import ConfigError, check_choice
from hilobench.core.terminal import console

#: Where profiles go when ``--out`` is not given (one timestamped directory each).
PROFILE_ROOT = Path("results") / "profiles"
MAX_STEPS = 100
#: The model knob ``attn`` is this command's own ``--attn`` (a layer's name, or a model's
#: stage-3 attention), so it gets no flag of its own.
OWN = ("attn",)
#: The shared flags ``profile`` takes, in the order help lists them.
SHARED = (
    "res", "batch", "device", "dtype", "impl", "threads", "mode", "train", "backend",
    "compile", "channels_last", "out_dir", "fmt", "plugin",
)  # fmt: skip
HELPS = {
    "batch": "Batch size, or a list such as 1,8,64 (one breakdown each, side by side).",
    "train": "Profile forward+backward+step.",
    "backend": "eager or compile (torch's profiler sees no runtime).",
    "out_dir": f"Directory for the trace, figure and profile (default: a new one under "
    f"{PROFILE_ROOT}).",
}

err = console(stderr=True, width=160)


def profile(
    names: str | None = typer.Argument(
        None,
        help="Model name(s), comma separated (see `hilobench model --list`); leave out "
        "to profile the attention layer(s) given by --attn.",
    ),  # fmt: skip
    attn: str | None = typer.Option(
        None,
        help="Without a model: attention layer(s), comma separated, printed side by "
        "side. With a model: its stage-3 attention (LITv2).",
    ),  # fmt: skip
    depth: int = typer.Option(3, help="Module tree depth shown (0: the whole module)."),
    steps: int = typer.Option(
        3, help="Profiled steps, each after one step timed without the profiler."
    ),
    *,
    flags: CaseFlags,
    knobs: dict[str, Any],
    set_knobs: list[str],
) -> None:
    """Where one step's time goes, by module, kind and operator, with MACs, memory and rate.

    By module (a tree), by kind (HiLo's Hi-Fi / Lo-Fi parts; a backbone's patch embed, token
    merging, attention, FFN, norms, head) and by operator, with MACs, parameters, peak memory
    and MAC rate; writes a Chrome trace and a stacked-bar PNG. Several layers, models,
    implementations or batches are profiled one after the other and printed side by side."""
    check_choice("format", flags.fmt, FORMATS)
    if isinstance(depth, bool) or depth < 0:
        raise ConfigError(f"depth must be an integer >= 0, got {depth}")
    if not 1 <= steps <= MAX_STEPS:
        raise ConfigError(f"steps must be an integer in [1, {MAX_STEPS}], got {steps}")
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # before torch: no CUDA-less-host noise
    if not (names or attn):
        raise ConfigError("nothing to profile: name a model, or give --attn NAME for a layer")
    if flags.backend not in ("eager", "compile"):
        check_choice("backend", flags.backend, list(options.BACKENDS))
        raise ConfigError(
            f"profile takes --backend eager or compile; {flags.backend} runs outside torch's "
            "profiler"
        )
    if names:
        values = dict(knobs, attn=attn) if attn is not None else knobs
        listed = caseopts.model_names(names)
        cases = caseopts.build_cases("model", listed, flags, values, set_knobs)
    else:
        layers = caseopts.layer_names(attn or "")
        cases = caseopts.build_cases("layer", layers, flags, knobs, set_knobs)
    _run(list({c.key: c for c in cases}.values()), depth, steps, flags.out_dir, flags.fmt)


def _run(cases: list[Case], depth: int, steps: int, out_dir: Path | None, fmt: str) -> None:
    from hilobench.run.engine import validate_case  # torch ~1.5 s
    from hilobench.run.session import profile_dir

    for c in cases:
        validate_case(c, fits=True)
    with profile_dir(out_dir, PROFILE_ROOT, say) as target:
        _write(cases, depth, steps, target, fmt)


def _write(cases: list[Case], depth: int, steps: int, target: Path, fmt: str) -> None:
    """Profile each case and write the traces, the figure and the tables into ``target``."""
    from hilobench.core.fileio import write_text_atomic
    from hilobench.profile.breakdown import build
    from hilobench.profile.capture import profile_case
    from hilobench.profile.output import print_tables, render

    breakdowns = []
    for i, c in enumerate(cases):
        trace = target / ("trace.json" if len(cases) == 1 else f"trace-{i + 1}.json")
        err.print(f"profiling {c.label()} …", markup=False, highlight=False)
        b = build(profile_case(c, steps=steps, trace_path=trace), depth)
        breakdowns.append(b)
    _figure(breakdowns, target / "profile.png")
    write_text_atomic(target / "profile.json", render(breakdowns, "json") + "\n")
    write_text_atomic(target / "profile.md", render(breakdowns, "md"))
    if fmt == "table":
        # piped: wide enough for the cases side by side
        wide = console(width=max(220, 125 * len(breakdowns)))
        print_tables(wide, breakdowns, ("modules", "kinds", "ops"))
    else:
        sys.stdout.write(render(breakdowns, fmt) + ("\n" if fmt != "csv" else ""))
    for b in breakdowns:
        if not b.within_tolerance:
            err.print(
                f"note: {b.label}: the parts sum to {b.residual * 100:+.1f}% of the step timed "
                "without the profiler; a busy machine widens this, more --steps narrow it",
                markup=False,
                highlight=False,
            )
    err.print(f"wrote the trace(s), profile.json, profile.md and the figure to {target}",
              markup=False, highlight=False)  # fmt: skip


def _figure(breakdowns: list[Any], path: Path) -> None:
    from hilobench.profile.bars import stacked_bars

    try:
        stacked_bars(breakdowns, path)
        for b in breakdowns:
            b.files["plot"] = str(path)
    except ConfigError as e:  # matplotlib missing: the tables and the trace still stand
        err.print(f"no figure: {e}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Attach ``profile``, with a flag per layer and model knob the options table holds now."""
    app.command("profile")(
        caseopts.command(
            profile, SHARED, knobs=("layer", "model"), after="res", exclude=OWN, helps=HELPS
        )
    )
