"""Names as users type them: shell-style globs (``'litv2_*'``, ``'*window*'``, as timm's
``list_models`` takes them) and other names of a row (timm's full names), resolved against a
registry's names. Kept apart from the registries so that both resolve alike."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping

from hilobench.core.errors import ConfigError, unknown

GLOB_CHARS = frozenset("*?[")


def is_glob(text: str) -> bool:
    return any(c in GLOB_CHARS for c in text)


def resolve_names(
    what: str,
    given: Iterable[str],
    names: Iterable[str],
    aliases: Mapping[str, str] | None = None,
    extra: str = "",
) -> list[str]:
    """Each of ``given`` as registry names, in order, each once: a name as it is, an alias as
    the name it stands for, a glob as every name (or alias) it matches, sorted. ConfigError
    for a name that is none of these (with the closest names) and for a glob matching nothing.
    ``extra`` ends the list of choices in a message (e.g. ", or timm:<name>")."""
    names = sorted(names)
    aliases = dict(aliases or {})
    out: list[str] = []
    for item in given:
        if is_glob(item):
            hits = {n for n in names if fnmatch.fnmatchcase(n, item)}
            hits |= {n for a, n in aliases.items() if fnmatch.fnmatchcase(a, item)}
            if not hits:
                raise ConfigError(
                    f"{what} pattern {item!r} matches no {what}; choose from: "
                    f"{', '.join(names)}{extra}"
                )
            found = sorted(hits)
        elif item in names:
            found = [item]
        elif item in aliases:
            found = [aliases[item]]
        else:
            raise unknown(what, item, names, extra, also=aliases)
        out += [n for n in found if n not in out]
    return out
