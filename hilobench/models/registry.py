"""Name → backbone builder. A new model is one ``register_model(ModelEntry(...))`` line.

Built-in families register themselves when ``hilobench.models`` is imported; timm-backed rows
live in ``zoo.py``; any other timm model is reachable as ``timm:<name>``. Third parties add
models through the ``hilobench.models`` entry point group: each entry point loads to a module
that calls :func:`register_model` on import, a :class:`ModelEntry`, or a callable returning one
or an iterable of them.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Literal

from torch import nn

from hilobench.attention import IMPLS
from hilobench.errors import ConfigError

#: Model options besides resolution, impl and class count; an entry lists those it accepts.
OPTIONS = ("attn", "alpha", "window", "dtm")
TIMM_PREFIX = "timm:"


@dataclass(frozen=True)
class ModelEntry:
    """One row of the model table.

    ``builder(res=(H, W), impl=..., num_classes=..., **options)`` returns the model, where
    ``options`` are the names in ``options`` that the caller set. ``source`` says where the code
    comes from; ``unavailable`` rows have no builder and say why in ``reason``.
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


_REGISTRY: dict[str, ModelEntry] = {}
_plugins_loaded = False


def register_model(entry: ModelEntry) -> ModelEntry:
    """Add ``entry`` (replacing one of the same name) and return it."""
    unknown = set(entry.options) - set(OPTIONS)
    if unknown:
        raise ValueError(f"unknown options {sorted(unknown)} for model {entry.name!r}")
    if entry.source != "unavailable" and entry.builder is None:
        raise ValueError(f"model {entry.name!r} needs a builder")
    _REGISTRY[entry.name] = entry
    return entry


def _register_loaded(obj: Any) -> None:
    if isinstance(obj, ModelEntry):
        register_model(obj)
    elif callable(obj):
        _register_loaded(obj())
    elif isinstance(obj, Iterable) and not isinstance(obj, (str, bytes)):
        for item in obj:
            _register_loaded(item)
    # a module registered its models on import; anything else has nothing to add


def _load() -> None:
    global _plugins_loaded
    import hilobench.models  # noqa: F401  (registers the built-in and timm rows)

    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group="hilobench.models"):
        try:
            obj = ep.load()
            if not isinstance(obj, types.ModuleType):  # a module registers itself on import
                _register_loaded(obj)
        except Exception as exc:  # a broken plugin must not take the built-in models down
            msg = f"model plugin {ep.name!r} ({ep.value}) failed to load: {exc}"
            warnings.warn(msg, stacklevel=2)


def available_models() -> list[ModelEntry]:
    """Every registered row, unavailable ones included, sorted by name."""
    _load()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def _timm_entry(name: str) -> ModelEntry:
    import timm

    timm_name = name[len(TIMM_PREFIX) :]
    if not timm_name or not timm.is_model(timm_name):
        raise ConfigError(
            f"timm has no model {timm_name!r}; list them with timm.list_models('<pattern>')"
        )
    from hilobench.models.zoo import timm_builder, timm_default_res

    return ModelEntry(
        name=name,
        display=timm_name,
        family="timm",
        source="timm",
        builder=timm_builder(timm_name),
        default_res=timm_default_res(timm_name),
        timm_name=timm_name,
    )


def get_model(name: str) -> ModelEntry:
    """The row for ``name``; ``timm:<name>`` reaches any timm model.

    Raises ConfigError for an unknown name (listing the available ones) and for an unavailable
    model (with the reason).
    """
    _load()
    if name.startswith(TIMM_PREFIX):
        return _timm_entry(name)
    entry = _REGISTRY.get(name)
    if entry is None:
        usable = [e.name for e in available_models() if e.source != "unavailable"]
        raise ConfigError(
            f"unknown model {name!r}; choose from: {', '.join(usable)}, or timm:<name>"
        )
    if entry.source == "unavailable":
        raise ConfigError(f"model {name!r} ({entry.display}) is unavailable: {entry.reason}")
    return entry


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
    attn: str | None = None,
    alpha: float | None = None,
    window: int | None = None,
    dtm: str = "deform",
    num_classes: int = 1000,
) -> nn.Module:
    """Build model ``name`` (random init, no download) for ``res`` images.

    ``res=None`` means the row's ``default_res`` (so ``deit_b_384`` is a 384 model unless told
    otherwise). Options the model does not take raise ConfigError naming the option and what it
    does take; ``dtm="deform"`` is the default and is accepted everywhere.
    """
    entry = get_model(name)
    hw = check_res(entry.default_res if res is None else res)
    if impl not in IMPLS:
        raise ConfigError(f"unknown impl {impl!r}; choose from: {', '.join(IMPLS)}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ConfigError(f"num_classes must be an integer >= 0, got {num_classes!r}")
    given = {"attn": attn, "alpha": alpha, "window": window, "dtm": dtm}
    options: dict[str, Any] = {}
    for key, value in given.items():
        if value is None or (key == "dtm" and value == "deform" and key not in entry.options):
            continue
        if key not in entry.options:
            takes = ", ".join(entry.options) or "none"
            raise ConfigError(
                f"model {name!r} does not take option {key}={value!r} (options it takes: {takes})"
            )
        options[key] = value
    assert entry.builder is not None
    return entry.builder(res=hw, impl=impl, num_classes=num_classes, **options)


def analytic_macs(model: nn.Module, res: int | tuple[int, int]) -> int | None:
    """Analytic MACs of one ``res`` image, or None for models without a formula (timm)."""
    macs = getattr(model, "macs", None)
    if not callable(macs):
        return None
    H, W = check_res(res)
    return int(macs(H, W))
