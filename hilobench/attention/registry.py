"""Name → attention builder. A new attention is one file plus one ``@register_attention`` line.

The knobs an attention takes are declared in that line: names of knobs in the options table
(``hilobench.options``), or new :class:`~hilobench.options.Knob` objects, which join the table
there; either way the CLI flags and suite fields follow. Third parties add theirs through the
``hilobench.attentions`` entry point group: each entry point is a module (or callable) that
registers its attentions when loaded. A plain Python file can do the same through
:func:`load_plugin_file` (``--plugin FILE``, a suite's ``plugins:``); the files loaded are
recorded in ``HILOBENCH_PLUGINS``, so worker processes load them too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from hilobench import options
from hilobench.attention.base import Attention
from hilobench.errors import ConfigError, unknown
from hilobench.names import resolve_names


@dataclass(frozen=True)
class AttentionEntry:
    """One registered attention; ``knobs`` / ``defaults`` are keyed by knob name (``sr``)."""

    name: str
    builder: Callable[..., Attention]
    description: str
    knobs: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, AttentionEntry] = {}
_plugins_loaded = False
#: Plug-in files loaded (``load_plugin_file``), as absolute paths joined by ``os.pathsep``;
#: a worker process inherits it and loads the same files.
PLUGINS_ENV = "HILOBENCH_PLUGINS"
_files_loaded: set[Path] = set()


def register_attention(
    name: str, description: str, knobs: Mapping[str | options.Knob, Any] | None = None
) -> Callable[[Callable[..., Attention]], Callable[..., Attention]]:
    """Class/function decorator: make ``name`` buildable with ``knobs``, a mapping of knob (a
    name in the options table, or a new :class:`~hilobench.options.Knob`) → this attention's
    default (None: the builder's own). Every attention takes dim, heads and tokens."""

    def deco(builder: Callable[..., Attention]) -> Callable[..., Attention]:
        taken = options.take("layer", name, knobs or {})
        _REGISTRY[name] = AttentionEntry(name, builder, description, tuple(taken), taken)
        return builder

    return deco


def _load() -> None:
    global _plugins_loaded
    # the built-in layers are registered already: importing this module runs the package's
    # __init__, which imports them
    if not _plugins_loaded:
        _plugins_loaded = True
        for ep in entry_points(group="hilobench.attentions"):
            ep.load()
        for path in os.environ.get(PLUGINS_ENV, "").split(os.pathsep):
            if path:
                load_plugin_file(path)


def load_plugin_file(path: str | Path) -> None:
    """Import the Python file at ``path``, so that the attentions (and knobs) it registers join
    the registry; a file already loaded is not run again. Any failure (no such file, a syntax
    error, an exception while it runs) is one ConfigError naming the file."""
    shown = str(path)
    p = Path(path).expanduser().resolve()
    if p in _files_loaded:
        return
    if not p.is_file():
        raise ConfigError(f"plugin {shown!r}: no such file")
    digest = hashlib.sha1(str(p).encode()).hexdigest()[:12]
    modname = f"hilobench_plugin_{digest}"
    spec = importlib.util.spec_from_file_location(modname, p)
    if spec is None or spec.loader is None:
        raise ConfigError(f"plugin {shown!r}: cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module  # dataclasses and pickling look their module up here
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        del sys.modules[modname]
        raise ConfigError(f"plugin {shown!r}: syntax error on line {e.lineno}: {e.msg}") from None
    except Exception as e:  # the plug-in's own code: whatever it raises is the user's error
        del sys.modules[modname]
        raise ConfigError(f"plugin {shown!r} failed: {type(e).__name__}: {e}") from None
    _files_loaded.add(p)
    known = [x for x in os.environ.get(PLUGINS_ENV, "").split(os.pathsep) if x]
    if str(p) not in known:
        os.environ[PLUGINS_ENV] = os.pathsep.join([*known, str(p)])


def available_attentions() -> list[str]:
    _load()
    return sorted(_REGISTRY)


def resolve_attentions(given: Iterable[str]) -> list[str]:
    """Attention names and globs (``'*window*'``) as registered names, each once."""
    _load()
    return resolve_names("attention", given, _REGISTRY)


def get_attention(name: str) -> AttentionEntry:
    _load()
    if name not in _REGISTRY:
        raise unknown("attention", name, sorted(_REGISTRY))
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
