"""Name → attention builder. A new attention is one file plus one ``@register_attention`` line.

The knobs an attention takes are declared in that line: names of knobs in the options table
(``hilobench.core.options``), or new :class:`~hilobench.core.options.Knob` objects, which join the
table there; either way the CLI flags and suite fields follow. Third parties add theirs through the
``hilobench.attentions`` entry point group: each entry point is a module that registers its
attentions when loaded. A plain Python file can do the same through :func:`load_plugin_file`
(``--plugin FILE``, a suite's ``plugins:``). The table is a
:class:`~hilobench.core.registry.Registry`, the mechanism the model registry shares: name
resolution, messages and the plug-in policy alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hilobench.attention.base import Attention
from hilobench.core import options
from hilobench.core.errors import ConfigError
from hilobench.core.plugins import PLUGINS_ENV as PLUGINS_ENV  # re-exported: the plug-in API
from hilobench.core.plugins import load_plugin_file as load_plugin_file  # re-exported, as above
from hilobench.core.registry import Registry


@dataclass(frozen=True)
class AttentionEntry:
    """One registered attention; ``knobs`` / ``defaults`` are keyed by knob name (``sr``)."""

    name: str
    builder: Callable[..., Attention]
    description: str
    knobs: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)


def _admit(entry: AttentionEntry) -> AttentionEntry:
    """Record the knobs ``entry`` takes in the options table (an entry point's entry too)."""
    given: dict[str | options.Knob, Any] = {k: v for k, v in entry.defaults.items()}
    options.take("layer", entry.name, given)
    return entry


#: The attentions; the built-in layers are registered already when it is first asked, since
#: importing this module runs the package's ``__init__``, which imports them.
ATTENTIONS: Registry[AttentionEntry] = Registry(
    "attention", "hilobench.attentions", AttentionEntry, lambda e: e.name, admit=_admit
)


def register_attention(
    name: str, description: str, knobs: Mapping[str | options.Knob, Any] | None = None
) -> Callable[[Callable[..., Attention]], Callable[..., Attention]]:
    """Class/function decorator: make ``name`` buildable with ``knobs``, a mapping of knob (a
    name in the options table, or a new :class:`~hilobench.core.options.Knob`) → this attention's
    default (None: the builder's own). Every attention takes dim, heads and tokens."""

    def deco(builder: Callable[..., Attention]) -> Callable[..., Attention]:
        taken = options.take("layer", name, knobs or {})
        ATTENTIONS.register(AttentionEntry(name, builder, description, tuple(taken), taken))
        return builder

    return deco


def available_attentions() -> list[str]:
    return ATTENTIONS.names()


def resolve_attentions(given: Iterable[str]) -> list[str]:
    """Attention names and globs (``'*window*'``) as registered names, each once."""
    return ATTENTIONS.resolve(given)


def get_attention(name: str) -> AttentionEntry:
    return ATTENTIONS.get(name)


def build_attention(
    name: str,
    dim: int,
    num_heads: int,
    *,
    qkv_bias: bool = True,
    impl: str = "reference",
    **knobs: Any,
) -> Attention:
    """Build attention ``name``; ``knobs`` are builder arguments (``sr_ratio``, ``window``...).
    A knob left None takes the layer's default, and one the layer does not take is ignored, so
    one set of knobs can build every layer; a Case is stricter (see bench.build_subject)."""
    entry = get_attention(name)
    kwargs: dict[str, Any] = {}
    for key, default in entry.defaults.items():
        arg = options.get(key).arg
        if arg is not None and default is not None:
            kwargs[arg] = default
    for arg, value in knobs.items():
        knob = options.by_arg("layer", arg)
        if knob is None or knob.every:
            allowed = [k.arg for k in options.knobs("layer") if not k.every and k.arg]
            raise ConfigError(f"unknown attention option {arg!r}; allowed: {', '.join(allowed)}")
        if value is not None and knob.name in entry.knobs:
            kwargs[arg] = value
    return entry.builder(dim=dim, num_heads=num_heads, qkv_bias=qkv_bias, impl=impl, **kwargs)
