"""Name → backbone builder. A new model is one ``register_model(ModelEntry(...))`` line.

Built-in families register themselves when ``hilobench.models`` is imported; timm-backed rows
live in ``zoo.py``, which also resolves ``timm:<name>`` (any other timm model) through
:func:`register_prefix`, so this module knows nothing of timm. The knobs a model takes are
names in the options table (``hilobench.core.options``). Third parties add
models through the ``hilobench.models`` entry point group: each entry point loads to a module
that calls :func:`register_model` on import, a :class:`ModelEntry`, or a callable returning one
or an iterable of them. A Python file (``--plugin FILE``, a suite's ``plugins:``) may call
:func:`register_model` too; :mod:`hilobench.core.plugins` loads both, as it does for attentions.
The table is a :class:`~hilobench.core.registry.Registry`, the mechanism the attentions share.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from hilobench.core import options as knobs
from hilobench.core.case import DEFAULT_IMPL, IMPLS, check_impl, expand_impls
from hilobench.core.errors import ConfigError
from hilobench.core.registry import Registry


@dataclass(frozen=True)
class ModelEntry:
    """One row of the model table.

    ``builder(res=(H, W), impl=..., num_classes=..., **options)`` returns the model, where
    ``options`` are the knobs in ``options`` (names in the options table) that the caller set.
    ``source`` says where the code comes from; ``unavailable`` rows have no builder and say why
    in ``reason``.
    """

    name: str
    display: str
    family: str
    source: Literal["hilobench", "timm", "unavailable"]
    builder: Callable[..., nn.Module] | None
    default_res: int
    reason: str = ""
    timm_name: str | None = None
    options: tuple[str, ...] = ()
    #: The implementations that run different code, when not both: a function (it may build
    #: the model to find out), called only when both are asked for. None: both.
    paths: Callable[[], tuple[str, ...]] | None = None
    #: Other names this row answers to (timm's full names: ``convnext_tiny`` → ``convnext_t``).
    aliases: tuple[str, ...] = ()


def _admit(entry: ModelEntry) -> ModelEntry:
    """Refuse a usable row without a builder; record the knobs it takes in the options table."""
    if entry.source != "unavailable" and entry.builder is None:
        raise ValueError(f"model {entry.name!r} needs a builder")
    knobs.take("model", entry.name, dict.fromkeys(entry.options))
    return entry


#: The models; the built-in and timm rows are registered already when it is first asked, since
#: importing this module runs the package's ``__init__``, which imports their modules.
MODELS: Registry[ModelEntry] = Registry(
    "model",
    "hilobench.models",
    ModelEntry,
    lambda e: e.name,
    aliases_of=lambda e: e.aliases,
    usable=lambda e: e.source != "unavailable",
    admit=_admit,
)


def register_model(entry: ModelEntry) -> ModelEntry:
    """Add ``entry`` (replacing one of the same name) and return it."""
    return MODELS.register(entry)


def register_prefix(prefix: str, resolve: Callable[[str], ModelEntry]) -> None:
    """Make every name starting with ``prefix`` (e.g. ``timm:``) resolve through ``resolve``."""
    MODELS.register_prefix(prefix, resolve)


def available_models() -> list[ModelEntry]:
    """Every registered row, unavailable ones included, sorted by name."""
    return MODELS.values()


def resolve_models(given: Iterable[str]) -> list[str]:
    """Model names, timm's full names and globs (``'litv2_*'``) as row names, each once; a
    glob matches the usable rows only, a prefixed name (``timm:...``) is kept as it is."""
    return MODELS.resolve(given)


def get_model(name: str) -> ModelEntry:
    """The row for ``name``; ``timm:<name>`` reaches any timm model.

    Raises ConfigError for an unknown name (listing the available ones) and for an unavailable
    model (with the reason).
    """
    entry = MODELS.get(name)
    if entry.source == "unavailable":
        raise ConfigError(f"model {name!r} ({entry.display}) is unavailable: {entry.reason}")
    return entry


def variant(
    name: str,
    display: str,
    family: str,
    build: Callable[..., nn.Module],
    size: str,
    options: tuple[str, ...],
    default_res: int = 224,
) -> ModelEntry:
    """The row ``name`` of a family built as ``build(size, res=..., impl=..., ...)``: each
    variant is registered on a line of its own that names it (``litv2_s``), so a search for
    the name finds where it is registered."""
    return ModelEntry(
        name=name,
        display=display,
        family=family,
        source="hilobench",
        builder=functools.partial(build, size),
        default_res=default_res,
        options=options,
    )


def impls_for(entry: ModelEntry, impl: str) -> list[str]:
    """The implementations to measure ``entry`` with for ``--impl impl``: ``both`` gives both
    where they run different code, else the default one alone (a CNN has no attention to fuse)."""
    impls = expand_impls(impl)
    if impl != "both" or entry.paths is None:
        return impls
    paths = entry.paths()
    return [i for i in IMPLS if i in paths] if len(paths) > 1 else [DEFAULT_IMPL]


def check_res(res: object) -> tuple[int, int]:
    """``res`` as ``(H, W)``; an int means a square image."""
    hw = (res, res) if isinstance(res, int) else res
    if (
        not isinstance(hw, (tuple, list))
        or len(hw) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in hw)
    ):
        raise ConfigError(f"resolution must be a positive int or (H, W) pair, got {res!r}")
    return int(hw[0]), int(hw[1])


def build_model(
    name: str,
    *,
    res: int | tuple[int, int] | None = None,
    impl: str = "reference",
    num_classes: int = 1000,
    **options: Any,
) -> nn.Module:
    """Build model ``name`` (random init, no download) for ``res`` images.

    ``res=None`` means the row's ``default_res`` (so ``deit_b_384`` is a 384 model unless told
    otherwise). ``options`` are model knobs of the options table (attn, alpha, window, dtm),
    checked there; None means unset, and a knob at its table default (``dtm="deform"``) is
    accepted by every model. A knob the model does not take raises ConfigError naming the
    models that do.
    """
    entry = get_model(name)
    hw = check_res(entry.default_res if res is None else res)
    check_impl(impl)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ConfigError(f"num_classes must be an integer >= 0, got {num_classes!r}")
    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        # a knob's name, or the builder argument it feeds (``sr_ratio``, from a Case's options)
        knob = knobs.get(key) if key in knobs.names("model") else knobs.by_arg("model", key)
        if knob is None:
            known = ", ".join(knobs.names("model"))
            raise ConfigError(f"unknown model option {key!r}; known: {known}")
        key = knob.name
        if value is None:
            continue
        if not knobs.takes("model", entry.name, key):
            if value == knob.default:
                continue
            raise knobs.not_taken("model", [f"model {name!r}"], key, f"{key}={value!r}")
        kwargs[knob.arg or key] = knob.check(value)
    assert entry.builder is not None
    return entry.builder(res=hw, impl=impl, num_classes=num_classes, **kwargs)


def analytic_macs(model: nn.Module, res: int | tuple[int, int]) -> int | None:
    """Analytic MACs of one ``res`` image, or None for models without a formula (timm)."""
    macs = getattr(model, "macs", None)
    if not callable(macs):
        return None
    H, W = check_res(res)
    return int(macs(H, W))


def add_options(name: str, *extra: str) -> ModelEntry:
    """Let registered model ``name`` take the knobs ``extra`` as well (a feature that other
    code adds to existing rows, e.g. the dense-prediction head); returns the new row."""
    entry = MODELS.entries[name]
    merged = entry.options + tuple(k for k in extra if k not in entry.options)
    return register_model(ModelEntry(**{**entry.__dict__, "options": merged}))
