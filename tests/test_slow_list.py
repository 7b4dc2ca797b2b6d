"""The one list of slow tests (tests/conftest.py ``SLOW``): every entry names a test that exists,
the listed tests carry the ``slow`` mark, and a stale entry is caught."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
from conftest import SLOW, TESTS, missing_slow, node_name


def test_every_listed_file_exists() -> None:
    assert [s for s in SLOW if not (TESTS / s.split("::")[0]).is_file()] == []


def _item(path: Path, name: str, module: types.ModuleType) -> types.SimpleNamespace:
    return types.SimpleNamespace(path=path, originalname=name, module=module)


def test_a_listed_test_its_file_lacks_is_caught() -> None:
    module = types.ModuleType("test_x")
    module.test_here = lambda: None  # type: ignore[attr-defined]
    item = _item(TESTS / "gate" / "test_x.py", "test_here", module)
    assert node_name(item) == "gate/test_x.py::test_here"
    listed = {"gate/test_x.py::test_here", "gate/test_x.py::test_gone", "run/test_y.py::test_z"}
    # a file not collected here is not judged; a collected one must define what is listed
    assert missing_slow([item], listed) == ["gate/test_x.py::test_gone"]


def test_listed_tests_are_marked_slow(request: pytest.FixtureRequest) -> None:
    collected = {node_name(i): i for i in request.session.items if hasattr(i, "originalname")}
    assert missing_slow(request.session.items) == []
    for name, item in collected.items():
        assert (item.get_closest_marker("slow") is not None) == (name in SLOW), name
