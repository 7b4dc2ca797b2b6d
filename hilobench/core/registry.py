"""Name → entry tables: the one mechanism behind the attention and the model registries.

A :class:`Registry` holds the entries of one kind by name and answers the questions both kinds
ask alike: which names there are, the entry for a name (an unknown one is a ConfigError with the
closest names), names and globs as users type them (:mod:`hilobench.core.names`), other names
of an entry (aliases) and name prefixes resolved on demand (``timm:<name>``). Plug-ins join
under the one policy of :mod:`hilobench.core.plugins`, loaded once, on the first question: an
entry point may load to a module that registers on import, an entry, a callable returning one,
or an iterable of them; a broken one is one warning and skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from hilobench.core.errors import unknown
from hilobench.core.names import resolve_names
from hilobench.core.plugins import load_entry_points

T = TypeVar("T")


class Registry(Generic[T]):
    """The entries of one kind (``what``: "attention", "model") by name.

    ``kind`` is the entries' class (what an entry point may load to); ``name_of`` reads an
    entry's name, ``aliases_of`` its other names; ``usable`` says whether an entry is offered
    (globs and the choices in messages leave the others out, a name still reaches them).
    ``admit`` checks and records an entry as it is registered and returns what is stored.
    """

    def __init__(
        self,
        what: str,
        group: str,
        kind: type[T],
        name_of: Callable[[T], str],
        *,
        aliases_of: Callable[[T], Iterable[str]] = lambda entry: (),
        usable: Callable[[T], bool] = lambda entry: True,
        admit: Callable[[T], T] = lambda entry: entry,
    ) -> None:
        self.what, self.group, self.kind = what, group, kind
        self._name_of, self._aliases_of, self._usable, self._admit = (
            name_of,
            aliases_of,
            usable,
            admit,
        )
        #: name → entry; tests may replace an item and have it restored
        self.entries: dict[str, T] = {}
        #: name prefix → function building the entry of a prefixed name on demand
        self.prefixes: dict[str, Callable[[str], T]] = {}

    def register(self, entry: T) -> T:
        """Add ``entry`` (replacing one of the same name) and return what is stored."""
        entry = self._admit(entry)
        self.entries[self._name_of(entry)] = entry
        return entry

    def register_prefix(self, prefix: str, resolve: Callable[[str], T]) -> None:
        """Make every name starting with ``prefix`` resolve through ``resolve``."""
        self.prefixes[prefix] = resolve

    def load(self) -> None:
        """Load the plug-ins of this kind (once per process; see :mod:`hilobench.core.plugins`)."""
        load_entry_points(self.group, self._accept)

    def _accept(self, obj: Any) -> None:
        if isinstance(obj, self.kind):
            self.register(obj)
        elif callable(obj):
            self._accept(obj())
        elif isinstance(obj, Iterable) and not isinstance(obj, (str, bytes)):
            for item in obj:
                self._accept(item)
        # anything else has nothing to add

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self.load()
        return sorted(self.entries)

    def values(self) -> list[T]:
        """Every registered entry, sorted by name."""
        return [self.entries[n] for n in self.names()]

    def usable_names(self) -> list[str]:
        """The names offered to users, sorted."""
        return [n for n in self.names() if self._usable(self.entries[n])]

    def aliases(self) -> dict[str, str]:
        """Other name → entry name, for every entry with aliases (a name itself wins)."""
        return {
            a: name
            for name, e in self.entries.items()
            for a in self._aliases_of(e)
            if a not in self.entries
        }

    def _prefixed(self) -> str:
        return "".join(f", or {p}<name>" for p in self.prefixes)

    def get(self, name: str) -> T:
        """The entry for ``name``, an alias or a prefixed name; ConfigError for an unknown
        name, with the closest names and the list of usable ones."""
        self.load()
        for prefix, resolve in self.prefixes.items():
            if name.startswith(prefix):
                return resolve(name)
        aliases = self.aliases()
        entry = self.entries.get(name) or self.entries.get(aliases.get(name, ""))
        if entry is None:
            raise unknown(self.what, name, self.usable_names(), self._prefixed(), also=aliases)
        return entry

    def resolve(self, given: Iterable[str]) -> list[str]:
        """Names, aliases and globs (``'litv2_*'``) as entry names, each once, in order: a
        glob matches the usable entries only, a registered or prefixed name is kept as it is
        (an entry that cannot be used is refused, with its reason, when it is built)."""
        self.load()
        out: list[str] = []
        for item in given:
            if item in self.entries or any(item.startswith(p) for p in self.prefixes):
                found = [item]
            else:
                found = resolve_names(
                    self.what, [item], self.usable_names(), self.aliases(), self._prefixed()
                )
            out += [n for n in found if n not in out]
        return out
