"""``hilobench profile``: where the time of one step goes, by module, by kind and by operator.

Takes the cases ``layer`` and ``model`` take, with the same flags and the same options table
(``--attn hilo --tokens 64x64 --alpha 0.5 …`` for a layer; a model name, with ``--dtm conv``
and the like, for a backbone). Several attentions or implementations (``--attn hilo,swmsa``)
are profiled one after the other and printed side by side. Parsing and printing only; the
work lives in :mod:`hilobench.profile`.

The CLI imports this module at start-up: torch and the registries load inside the command.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from hilobench.cli import flags
from hilobench.cli.rowtable import FORMATS
from hilobench.core import options
from hilobench.core.case import DEFAULT_IMPL, Case, expand_impls, parse_batches, parse_hw
from hilobench.core.errors import ConfigError, check_choice
from hilobench.core.terminal import console

#: Where profiles go when ``--out`` is not given (one timestamped directory each).
PROFILE_ROOT = Path("results") / "profiles"
MAX_STEPS = 100
#: The model knob ``attn`` is this command's own ``--attn`` (a layer's name, or a model's
#: stage-3 attention), so it gets no flag of its own.
OWN = ("attn",)

err = console(stderr=True, width=160)


def _knobs() -> list[options.Knob]:
    """The knobs of layers and of models, each once, in the table's order."""
    return [k for k in options.knobs() if k.name not in OWN and set(k.kinds) & {"layer", "model"}]


def _knob_parameter(knob: options.Knob) -> inspect.Parameter:
    kinds = " / ".join(f"{options.NOUNS[k]}s" for k in knob.kinds)
    default = typer.Option(
        knob.default, help=f"{knob.help} ({kinds})", show_default=knob.default is not None
    )
    py = options.PY_TYPES[knob.type]
    return inspect.Parameter(
        knob.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=py if knob.default is not None else py | None,
    )


def _set_on_command_line(ctx: typer.Context, names: list[str]) -> list[str]:
    """Which of ``names`` the command line set (not left at their defaults)."""
    sources = {n: getattr(ctx.get_parameter_source(n), "name", "DEFAULT") for n in names}
    return [n for n, src in sources.items() if src != "DEFAULT"]


def _refuse(ctx: typer.Context, kind: str, knobs: dict[str, Any]) -> None:
    """A knob that only the other kind takes, set on the command line, is refused."""
    for name in _set_on_command_line(ctx, list(knobs)):
        knob = options.get(name)
        if not options.of_kind(knob, kind):  # a model passes layer knobs to swapped layers
            other = "an attention layer" if kind == "model" else "a model"
            raise ConfigError(f"{knob.flag} applies to {other} only, not to {kind} cases")


def layer_cases(
    ctx: typer.Context, attn: str, res: str | None, common: dict[str, Any], knobs: dict[str, Any]
) -> list[Case]:
    """The cases ``hilobench layer`` would build from the same flags."""
    from hilobench.attention import available_attentions, resolve_attentions  # torch ~1.5 s

    names = resolve_attentions(flags.split_list(attn))
    if not names:
        raise ConfigError(f"no attention given in --attn {attn!r}; name one, e.g. --attn hilo")
    given = options.given({k: v for k, v in knobs.items() if "layer" in options.get(k).kinds})
    flags.check_layers(names, given, available_attentions())
    _refuse(ctx, "layer", knobs)
    impls = expand_impls(common.pop("impl"))
    return [
        Case("layer", n, res=parse_hw(res or "224"), impl=i,
             options=tuple(options.taken("layer", n, given).items()), **common)
        for n in names
        for i in impls
    ]  # fmt: skip


def model_cases(
    ctx: typer.Context,
    names: str,
    attn: str | None,
    res: str | None,
    common: dict[str, Any],
    knobs: dict[str, Any],
) -> list[Case]:
    """The cases ``hilobench model`` would build from the same flags (one mode: ``--train``
    profiles the training step instead of inference)."""
    from hilobench.models import get_model, impls_for, resolve_models  # torch, torchvision

    _refuse(ctx, "model", knobs)
    values = {k: v for k, v in knobs.items() if options.of_kind(options.get(k), "model")}
    if attn is not None:
        values["attn"] = attn
    opts = tuple(options.given(values).items())
    impl = common.pop("impl")
    cases = []
    listed = resolve_models(flags.split_list(names))
    if not listed:
        raise ConfigError(f"no model given in {names!r}; name one, see `hilobench model --list`")
    for name in listed:
        entry = get_model(name)
        hw = parse_hw(res) if res else (entry.default_res, entry.default_res)
        for i in impls_for(entry, impl):
            cases.append(Case("model", name, res=hw, impl=i, options=opts, **common))
    return cases


def profile(
    ctx: typer.Context,
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
    res: str | None = typer.Option(None, help="Image resolution N or HxW (layer: 224)."),
    batch: str = typer.Option(
        "64", help="Batch size, or a list such as 1,8,64 (one breakdown each, side by side)."
    ),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    dtype: str = typer.Option("float32", help="float32, tf32 (cuda), bfloat16, float16 (cuda)."),
    impl: str = typer.Option(DEFAULT_IMPL, help=flags.IMPL_HELP + " Both: side by side."),
    threads: int | None = typer.Option(None, help="CPU threads (default: physical cores)."),
    train: bool = typer.Option(False, "--train", help="Profile forward+backward+step."),
    backend: str = typer.Option(
        "eager", help="eager or compile (torch's profiler sees no runtime)."
    ),
    channels_last: bool = typer.Option(False, "--channels-last", help="NHWC (models)."),
    depth: int = typer.Option(3, help="Module tree depth shown (0: the whole module)."),
    steps: int = typer.Option(
        3, help="Profiled steps, each after one step timed without the profiler."
    ),
    out_dir: Path | None = typer.Option(
        None,
        "--out",
        help=f"Directory for the trace, figure and profile (default: a new one "
        f"under {PROFILE_ROOT}).",
    ),  # fmt: skip
    fmt: str = typer.Option("table", "--format", help="table, json, csv or md."),
    **knobs: Any,
) -> None:
    """Where one step's time goes, by module, kind and operator, with MACs, memory and rate.

    By module (a tree), by kind (HiLo's Hi-Fi / Lo-Fi parts; a backbone's patch embed, token
    merging, attention, FFN, norms, head) and by operator, with MACs, parameters, peak memory
    and MAC rate; writes a Chrome trace and a stacked-bar PNG."""
    check_choice("format", fmt, FORMATS)
    if isinstance(depth, bool) or depth < 0:
        raise ConfigError(f"depth must be an integer >= 0, got {depth}")
    if not 1 <= steps <= MAX_STEPS:
        raise ConfigError(f"steps must be an integer in [1, {MAX_STEPS}], got {steps}")
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # before torch: no CUDA-less-host noise
    if not (names or attn):
        raise ConfigError("nothing to profile: name a model, or give --attn NAME for a layer")
    if backend not in ("eager", "compile"):
        check_choice("backend", backend, list(options.BACKENDS))
        raise ConfigError(
            f"profile takes --backend eager or compile; {backend} runs outside torch's profiler"
        )
    cases: list[Case] = []
    for b in parse_batches(batch):  # the list parser `layer` and `model` use
        common = dict(batch=b, device=device, dtype=dtype, impl=impl, threads=threads,
                      mode="train" if train else "infer", backend=backend)  # fmt: skip
        if names:
            cases += model_cases(
                ctx, names, attn, res, {**common, "channels_last": channels_last}, knobs
            )
        else:
            cases += layer_cases(ctx, attn or "", res, common, knobs)
    _run(list({c.key: c for c in cases}.values()), depth, steps, out_dir, fmt)


def _run(cases: list[Case], depth: int, steps: int, out_dir: Path | None, fmt: str) -> None:
    from hilobench.core.fileio import make_dir, write_text_atomic
    from hilobench.profile.breakdown import build
    from hilobench.profile.capture import profile_case
    from hilobench.profile.output import print_tables, render
    from hilobench.run.engine import validate_case  # torch ~1.5 s
    from hilobench.store.writer import check_writable, new_run_dir

    for c in cases:
        validate_case(c, fits=True)
    target = make_dir(check_writable(out_dir if out_dir is not None else new_run_dir(PROFILE_ROOT)))
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


def _with_knobs(func: Callable[..., None], after: str) -> Callable[..., None]:
    """``func`` with one option per layer / model knob, listed after ``after``."""
    params = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in inspect.signature(func, eval_str=True).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    for i in (0, 1):  # the context and the model names
        params[i] = params[i].replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD)
    at = [p.name for p in params].index(after) + 1
    extra = [_knob_parameter(k) for k in _knobs()]

    def command(**kwargs: Any) -> None:
        func(**kwargs)

    command.__doc__ = func.__doc__
    command.__name__ = func.__name__
    command.__signature__ = inspect.Signature(params[:at] + extra + params[at:])  # type: ignore[attr-defined]
    return command


def register(app: typer.Typer) -> None:
    app.command("profile")(_with_knobs(profile, "res"))
