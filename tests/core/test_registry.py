"""The one registry mechanism: names, did-you-mean, globs, aliases, prefixes and plug-ins alike
for every kind (the attentions' and the models' tables are two of its instances)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib.metadata import EntryPoint

import pytest

from hilobench.core import plugins
from hilobench.core.errors import ConfigError
from hilobench.core.registry import Registry


@dataclass(frozen=True)
class Thing:
    name: str
    aliases: tuple[str, ...] = ()
    usable: bool = True


def _things() -> Registry[Thing]:
    reg: Registry[Thing] = Registry(
        "thing",
        "hilobench.test_things",
        Thing,
        lambda t: t.name,
        aliases_of=lambda t: t.aliases,
        usable=lambda t: t.usable,
    )
    for t in (Thing("alpha_s", ("alpha_small",)), Thing("alpha_b"), Thing("gone", usable=False)):
        reg.register(t)
    return reg


@pytest.fixture(autouse=True)
def _no_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "entry_points", lambda group: [])
    monkeypatch.setattr(plugins, "_groups_loaded", set())
    monkeypatch.delenv(plugins.PLUGINS_ENV, raising=False)


def test_names_get_and_aliases() -> None:
    reg = _things()
    assert reg.names() == ["alpha_b", "alpha_s", "gone"]
    assert reg.usable_names() == ["alpha_b", "alpha_s"]
    assert reg.get("alpha_small") is reg.get("alpha_s")
    assert reg.get("gone").name == "gone"  # a name reaches an entry that is not offered


def test_an_unknown_name_is_one_line_with_the_closest_names() -> None:
    reg = _things()
    reg.register_prefix("ext:", lambda name: Thing(name))
    with pytest.raises(ConfigError) as err:
        reg.get("alpha_z")
    msg = str(err.value)
    assert "unknown thing 'alpha_z' (did you mean" in msg and "'alpha_s'" in msg
    assert msg.endswith("choose from: alpha_b, alpha_s, or ext:<name>")  # `gone` is not offered
    assert reg.get("ext:other") == Thing("ext:other")


def test_resolve_globs_aliases_and_prefixes_each_once() -> None:
    reg = _things()
    reg.register_prefix("ext:", lambda name: Thing(name))
    assert reg.resolve(["alpha_*", "alpha_small", "gone", "ext:x"]) == [
        "alpha_b",
        "alpha_s",
        "gone",
        "ext:x",
    ]
    with pytest.raises(ConfigError, match="thing pattern 'beta_\\*' matches no thing"):
        reg.resolve(["beta_*"])
    with pytest.raises(ConfigError, match="did you mean 'alpha_b'"):
        reg.resolve(["alpha_bb"])


def test_admit_checks_what_is_registered() -> None:
    def admit(t: Thing) -> Thing:
        if not t.name.islower():
            raise ValueError(f"thing {t.name!r} must be lower case")
        return Thing(t.name, ("admitted",))

    reg: Registry[Thing] = Registry("thing", "g", Thing, lambda t: t.name, admit=admit)
    with pytest.raises(ValueError, match="'Bad' must be lower case"):
        reg.register(Thing("Bad"))
    assert reg.register(Thing("ok")).aliases == ("admitted",)
    assert reg.entries == {"ok": Thing("ok", ("admitted",))}


def test_entry_points_give_entries_callables_or_lists_and_a_broken_one_warns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded = {
        "one": Thing("one"),
        "many": lambda: [Thing("two"), Thing("three")],
        "nothing": 42,  # nothing to add: ignored
    }
    group = "hilobench.test_things"
    eps = [EntryPoint(n, f"mod:{n}", group) for n in [*loaded, "broken"]]

    def load(ep: EntryPoint) -> object:
        if ep.name == "broken":
            raise ImportError("no module named mod")
        return loaded[ep.name]

    monkeypatch.setattr(EntryPoint, "load", load)
    monkeypatch.setattr(plugins, "entry_points", lambda group: eps)
    reg = _things()
    with pytest.warns(plugins.PluginWarning, match=f"{group} plug-in 'broken'.*ImportError"):
        names = reg.names()
    assert names == ["alpha_b", "alpha_s", "gone", "one", "three", "two"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # loaded once: no second warning
        assert reg.names() == names
