"""The flags every measuring command shares, declared once, and the one case builder.

``layer``, ``model`` and ``profile`` take the same case flags (:data:`FLAGS`: resolution,
batch, device, dtype, implementation, threads, mode, runtime, budget, output...) and one typer
option per knob of the options table; :func:`command` builds a command's signature from its
own parameters, the flags it names and the knobs, once the plug-ins have declared theirs.
:func:`build_cases` turns a command line into Cases: names × resolutions × modes ×
implementations × batches × runtimes, in a suite's expansion order (``--max-batch`` is a
search per such case).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from hilobench.cli import flags as fl
from hilobench.cli.rowtable import COLUMNS_HELP, WIDE_HELP
from hilobench.core import options
from hilobench.core.case import DEFAULT_IMPL, Case, parse_hw
from hilobench.core.errors import ConfigError


@dataclass(frozen=True)
class Flag:
    """One shared flag: its Python type, default, spellings (empty: ``--name``) and help."""

    type: Any
    default: Any
    help: str
    decls: tuple[str, ...] = ()
    metavar: str | None = None


FLAGS: dict[str, Flag] = {
    "res": Flag(str | None, None, "Image resolution(s): N or HxW, comma separated (a layer: "
                "224; a model: its own, 224 or 384)."),
    "batch": Flag(str | None, None, fl.BATCH_HELP),
    "device": Flag(str, "cpu", "cpu or cuda."),
    "dtype": Flag(str, "float32", "float32, tf32 (cuda), bfloat16, float16 (cuda)."),
    "impl": Flag(str, DEFAULT_IMPL, fl.IMPL_HELP),
    "threads": Flag(int | None, None, "CPU threads (default: physical cores)."),
    "mode": Flag(str, "infer", fl.MODE_HELP),
    "train": Flag(bool, False, fl.TRAIN_HELP, ("--train",)),
    "backend": Flag(str, "eager", fl.BACKEND_HELP),
    "compile": Flag(bool, False, fl.COMPILE_HELP, ("--compile",)),
    "channels_last": Flag(bool, False, "NHWC memory format (models).", ("--channels-last",)),
    "max_batch": Flag(bool, False, fl.MAX_BATCH_HELP, ("--max-batch",)),
    "mem_limit": Flag(str | None, None, fl.MEM_LIMIT_HELP, ("--mem-limit",)),
    "budget": Flag(float, 3.0, fl.BUDGET_HELP),
    "roofline": Flag(bool, True, fl.ROOFLINE_HELP),
    "out_dir": Flag(Path | None, None, "Run directory for the results.", ("--out",)),
    "append": Flag(bool, False, fl.APPEND_HELP, ("--append",)),
    "fmt": Flag(str, "table", "table, json, csv or md.", ("--format",)),
    "columns": Flag(str | None, None, COLUMNS_HELP, ("--columns",)),
    "wide": Flag(bool, False, WIDE_HELP, ("--wide",)),
    "plugin": Flag(list[Path], [], fl.PLUGIN_HELP, ("--plugin",), "FILE"),
}  # fmt: skip


@dataclass(frozen=True)
class CaseFlags:
    """The shared flags' values on one command line (the defaults of :data:`FLAGS` for the
    flags a command does not take)."""

    res: str | None = None
    batch: str | None = None
    device: str = "cpu"
    dtype: str = "float32"
    impl: str = DEFAULT_IMPL
    threads: int | None = None
    mode: str = "infer"
    train: bool = False
    backend: str = "eager"
    compile: bool = False
    channels_last: bool = False
    max_batch: bool = False
    mem_limit: str | None = None
    budget: float | None = None
    roofline: bool = True
    out_dir: Path | None = None
    append: bool = False
    fmt: str = "table"
    columns: str | None = None
    wide: bool = False
    plugin: tuple[Path, ...] = ()


def _option(name: str, flag: Flag, default: Any, help: str | None) -> inspect.Parameter:
    info = typer.Option(default, *flag.decls, help=help or flag.help, metavar=flag.metavar)
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=flag.type
    )


def knob_parameters(kinds: Sequence[str], exclude: Sequence[str] = ()) -> list[inspect.Parameter]:
    """One typer option per knob of ``kinds`` (each once, in the table's order): ``--name``,
    or ``--name/--no-name`` for a bool knob, with who takes it in the help."""
    out: dict[str, inspect.Parameter] = {}
    for kind in kinds:
        for knob in options.knobs(kind):
            if knob.name in out or knob.name in exclude:
                continue
            takers = [k for k in kinds if options.of_kind(knob, k)]
            help = options.help_text(kind, knob)
            if len(kinds) > 1:
                help += f" ({' / '.join(f'{options.NOUNS[k]}s' for k in takers)})"
            py = options.PY_TYPES[knob.type]
            info = typer.Option(knob.default, help=help, show_default=knob.default is not None)
            out[knob.name] = inspect.Parameter(
                knob.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=info,
                annotation=py if knob.default is not None else py | None,
            )
    return list(out.values())


def attach(app: typer.Typer, kind: str, func: Callable[..., None], shared: Sequence[str],
           *, after: str, budget: float) -> None:  # fmt: skip
    """Add ``func`` to ``app`` as the command ``kind`` (``layer``, ``model``): the ``shared``
    flags, the knobs of that kind listed after ``after``, and its default ``--budget``."""
    app.command(kind)(
        command(func, shared, knobs=(kind,), after=after, defaults={"budget": budget})
    )


def command(
    func: Callable[..., None],
    shared: Sequence[str],
    *,
    knobs: Sequence[str],
    after: str,
    exclude: Sequence[str] = (),
    defaults: dict[str, Any] | None = None,
    helps: dict[str, str] | None = None,
) -> Callable[..., None]:
    """A typer command: ``func``'s own parameters, then the ``shared`` flags (``defaults`` and
    ``helps`` may change theirs), with the knobs of the kinds ``knobs`` listed after
    ``after``. ``func`` gets its own parameters, ``flags`` (:class:`CaseFlags`), ``knobs``
    (every knob's value) and ``set_knobs`` (the knobs the command line set)."""
    own = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in inspect.signature(func, eval_str=True).parameters.values()
        if p.name not in ("flags", "knobs", "set_knobs")
    ]
    ctx = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
    params = [ctx, *own]
    params += [
        _option(n, FLAGS[n], (defaults or {}).get(n, FLAGS[n].default), (helps or {}).get(n))
        for n in shared
    ]
    extra = knob_parameters(knobs, exclude)
    at = [p.name for p in params].index(after) + 1
    own_names = {p.name for p in own}
    knob_names = [p.name for p in extra]

    def run(**kw: Any) -> None:
        context: typer.Context = kw.pop("ctx")
        mine = {k: kw.pop(k) for k in own_names}
        values = {k: kw.pop(k) for k in knob_names}
        source = {k: getattr(context.get_parameter_source(k), "name", "DEFAULT") for k in values}
        kw["plugin"] = tuple(kw.get("plugin") or ())
        func(**mine, flags=CaseFlags(**kw), knobs=values,
             set_knobs=[k for k, s in source.items() if s != "DEFAULT"])  # fmt: skip

    run.__doc__ = func.__doc__
    run.__name__ = func.__name__
    run.__signature__ = inspect.Signature(params[:at] + extra + params[at:])  # type: ignore[attr-defined]
    return run


def knob_values(kind: str, knobs: dict[str, Any], set_knobs: Sequence[str]) -> dict[str, Any]:
    """The knob values a ``kind`` case takes, checked (:func:`options.given`); a knob only
    the other kind takes, set on the command line, is refused in one line."""
    for name in set_knobs:
        knob = options.get(name)
        if not options.of_kind(knob, kind):  # a model passes layer knobs to swapped layers
            other = "an attention layer" if kind == "model" else "a model"
            raise ConfigError(f"{knob.flag} applies to {other} only, not to {kind} cases")
    return options.given({k: v for k, v in knobs.items() if options.of_kind(options.get(k), kind)})


def layer_names(attn: str) -> list[str]:
    """``--attn``: one name, a comma list, globs or ``all``; refused when it names none."""
    from hilobench.attention import available_attentions, resolve_attentions  # torch ~1.5 s

    if attn.strip() == "all":
        return available_attentions()
    names = resolve_attentions(fl.split_list(attn))
    if not names:
        raise ConfigError(
            f"no attention given in --attn {attn!r}; choose from: "
            f"{', '.join(available_attentions())}"
        )
    return names


def model_names(text: str | None) -> list[str]:
    """Model names, timm's names, globs or ``timm:<name>``; refused when it names none."""
    from hilobench.models import resolve_models  # torch, torchvision

    listed = resolve_models(fl.split_list(text or ""))
    if not listed:
        given = f" in {text!r}" if text else ""
        raise ConfigError(f"no model given{given}; name one, see `hilobench model --list`")
    return listed


def build_cases(
    kind: str, names: list[str], f: CaseFlags, knobs: dict[str, Any], set_knobs: Sequence[str]
) -> list[Case]:
    """The Cases of a command line: names × resolutions × modes × implementations × batches
    × runtimes, in a suite's expansion order. ``knobs`` and ``set_knobs`` are checked by
    :func:`knob_values`; a layer takes the knobs it takes (each knob checked to be taken by one
    of them); a model gets them all (one that does not take them refuses when it is built)."""
    given = knob_values(kind, knobs, set_knobs)
    modes = fl.parse_modes(f.train, f.mode)
    batches = fl.parse_batch_option(f.batch, f.max_batch, f.mem_limit)
    backends = fl.parse_backends(f.backend, f.compile, modes)
    common: dict[str, Any] = {"device": f.device, "dtype": f.dtype, "threads": f.threads}
    if f.budget is not None:
        common["budget"] = f.budget
    res_list = fl.parse_res_list(f.res) if f.res else None
    if kind == "layer":
        from hilobench.attention import available_attentions

        fl.check_layers(names, given, available_attentions())
        impls = fl.parse_impls(f.impl)
        each = {n: (res_list or [parse_hw("224")], impls) for n in names}
        opts = {n: tuple(options.taken("layer", n, given).items()) for n in names}
    else:
        from hilobench.models import get_model, impls_for

        each = {}
        for n in names:
            entry = get_model(n)
            hw = (entry.default_res, entry.default_res)
            each[n] = (res_list or [hw], impls_for(entry, f.impl))
        opts = dict.fromkeys(names, tuple(given.items()))
        common["channels_last"] = f.channels_last
    return [
        Case(kind, n, res=r, batch=b, impl=i, mode=m, backend=be, options=opts[n], **common)
        for n in names
        for r in each[n][0]
        for m in modes
        for i in each[n][1]
        for b in batches
        for be in backends
    ]
