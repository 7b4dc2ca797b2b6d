"""pyproject.toml's floors are exactly the versions ``make test-floor`` tests
(constraints-floor.txt), and the newest pins (constraints.txt, ``make test``) lie above them:
a floor nobody tested is not claimed, and a pin that broke a floor is caught here."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def pins(name: str) -> dict[str, Version]:
    out = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            pkg, version = line.split("==")
            out[canon(pkg)] = Version(version)
    return out


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


#: Extras for the runtime backends: `make install` installs them at the newest pins only, so
#: their floors are those pins (tested); TensorRT needs a CUDA machine and is never installed.
RUNTIME_EXTRAS = ("onnx", "openvino", "tensorrt")


def floors(runtime: bool = False) -> dict[str, Version]:
    """pyproject's floors: the core and test ones, or (``runtime``) those of the runtime
    extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    if runtime:
        reqs = [r for name in RUNTIME_EXTRAS for r in extras.get(name, [])]
    else:
        reqs = list(project["dependencies"])
        reqs += [r for name, group in extras.items() if name not in RUNTIME_EXTRAS for r in group]
    out = {}
    for text in reqs:
        req = Requirement(text)
        (spec,) = req.specifier  # one floor each, nothing else
        assert spec.operator == ">=", text
        out[canon(req.name)] = Version(spec.version)
    return out


def test_runtime_extras_floors_are_their_tested_pins() -> None:
    new = pins("constraints.txt")
    for name, version in floors(runtime=True).items():
        if name == "torch-tensorrt":  # CUDA only: no pin, documented as untested
            continue
        assert new.get(name) == version, f"{name}: floor {version}, pinned {new.get(name)}"


def test_floors_are_the_tested_versions_and_the_pins_lie_above() -> None:
    low, new, floor = pins("constraints-floor.txt"), pins("constraints.txt"), floors()
    assert "pandas" not in floor and "pandas" not in new and "pandas" not in low
    for name, version in floor.items():
        assert low.get(name) == version, f"{name}: floor {version}, tested {low.get(name)}"
        assert new[name] >= version, f"{name}: pinned {new[name]} below the floor {version}"
    assert floor["torch"] == Version("2.6") and floor["numpy"] < Version("2")
