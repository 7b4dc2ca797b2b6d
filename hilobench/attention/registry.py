"""Name → attention builder. A new attention is one file plus one ``@register_attention`` line.

Third parties add theirs through the ``hilobench.attentions`` entry point group: each entry
point is a module (or callable) that registers its attentions when loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from hilobench.attention.base import Attention
from hilobench.errors import ConfigError

#: Knobs an attention may accept besides dim / num_heads / qkv_bias / impl.
KNOBS = ("window", "alpha", "sr_ratio", "shift", "rel_pos")


@dataclass(frozen=True)
class AttentionEntry:
    name: str
    builder: Callable[..., Attention]
    description: str
    knobs: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, AttentionEntry] = {}
_plugins_loaded = False


def register_attention(
    name: str, description: str, knobs: tuple[str, ...] = (), **defaults: Any
) -> Callable[[Callable[..., Attention]], Callable[..., Attention]]:
    """Class/function decorator: make ``name`` buildable with the given knobs and defaults."""
    unknown = set(knobs) - set(KNOBS)
    if unknown:
        raise ValueError(f"unknown knobs {sorted(unknown)} for attention {name!r}")

    def deco(builder: Callable[..., Attention]) -> Callable[..., Attention]:
        _REGISTRY[name] = AttentionEntry(name, builder, description, tuple(knobs), dict(defaults))
        return builder

    return deco


def _load() -> None:
    global _plugins_loaded
    # importing the package registers the built-in layers
    import hilobench.attention  # noqa: F401

    if not _plugins_loaded:
        _plugins_loaded = True
        for ep in entry_points(group="hilobench.attentions"):
            ep.load()


def available_attentions() -> list[str]:
    _load()
    return sorted(_REGISTRY)


def get_attention(name: str) -> AttentionEntry:
    _load()
    if name not in _REGISTRY:
        raise ConfigError(
            f"unknown attention {name!r}; choose from: {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[name]


def build_attention(
    name: str,
    dim: int,
    num_heads: int,
    *,
    qkv_bias: bool = True,
    impl: str = "reference",
    **knobs: Any,
) -> Attention:
    """Build attention ``name``. Knobs it does not take (``None`` or absent) are ignored, so one
    set of CLI options can drive every layer; knobs left ``None`` take the layer's default."""
    entry = get_attention(name)
    kwargs = dict(entry.defaults)
    for k, v in knobs.items():
        if k not in KNOBS:
            raise ConfigError(f"unknown attention option {k!r}; allowed: {', '.join(KNOBS)}")
        if v is not None and k in entry.knobs:
            kwargs[k] = v
    return entry.builder(dim=dim, num_heads=num_heads, qkv_bias=qkv_bias, impl=impl, **kwargs)
