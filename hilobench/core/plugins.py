"""Plug-ins: attentions and models from outside the package, loaded under one policy.

Two ways in, for both registries (:mod:`hilobench.attention.registry`,
:mod:`hilobench.models.registry`):

- **installed packages**, through the entry point groups ``hilobench.attentions`` and
  ``hilobench.models``: each entry point loads to a module that registers on import (or, for
  models, to what :func:`~hilobench.models.registry.register_model` takes). A broken one is
  skipped with one warning naming it, the group and the error: an installed package the user
  did not name must not take the built-in attentions and models down with it;
- **Python files** the user names (``--plugin FILE``, a suite's ``plugins:``), run by
  :func:`load_plugin_file`: one that fails is one ConfigError naming the file (exit 2), since
  the user asked for it. The files loaded are recorded in ``HILOBENCH_PLUGINS``, so worker
  processes load them too, whichever registry they open first.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import types
import warnings
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from hilobench.core.errors import ConfigError

#: Plug-in files loaded (``load_plugin_file``), as absolute paths joined by ``os.pathsep``;
#: a worker process inherits it and loads the same files.
PLUGINS_ENV = "HILOBENCH_PLUGINS"
_files_loaded: set[Path] = set()
_groups_loaded: set[str] = set()


class PluginWarning(UserWarning):
    """An installed plug-in (entry point) failed to load and was skipped."""


def load_entry_points(group: str, accept: Callable[[Any], None] | None = None) -> None:
    """Load every entry point of ``group`` once per process, then the plug-in files a parent
    process recorded. ``accept`` gets what an entry point loads to unless it is a module (a
    module registers itself on import). A failure is a :class:`PluginWarning`, never fatal."""
    if group in _groups_loaded:
        return
    _groups_loaded.add(group)
    for ep in entry_points(group=group):
        try:
            obj = ep.load()
            if accept is not None and not isinstance(obj, types.ModuleType):
                accept(obj)
        except Exception as exc:  # a third party's code: whatever it raises is skipped
            msg = f"{group} plug-in {ep.name!r} ({ep.value}) failed to load and is skipped: "
            warnings.warn(msg + f"{type(exc).__name__}: {exc}", PluginWarning, stacklevel=2)
    for path in os.environ.get(PLUGINS_ENV, "").split(os.pathsep):
        if path:
            load_plugin_file(path)


def load_plugin_file(path: str | Path) -> None:
    """Import the Python file at ``path``, so that the attentions, models and knobs it
    registers join their registries; a file already loaded is not run again. Any failure (no
    such file, a syntax error, an exception while it runs) is one ConfigError naming the file."""
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


def load_plugin_files(paths: list[str | Path] | list[Path]) -> None:
    """:func:`load_plugin_file` for each of ``paths``, in order."""
    for path in paths:
        load_plugin_file(path)
