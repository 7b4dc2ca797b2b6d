"""The layout rules of docs/architecture.md, checked: small modules, each documented, no cycles,
packages in layers (each imports only its own or lower ones), one name for one job."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "hilobench"
MAX_LINES = 400
#: The packages, lowest first: a module may import its own package and the ones before it.
LAYERS = (
    "core", "measure", "attention", "models", "backends", "store", "run", "cluster", "suite",
    "gate", "report", "profile", "cli",
)  # fmt: skip
#: What the top level may hold besides the packages: the version and ``python -m hilobench``.
TOP_LEVEL_FILES = {"__init__.py", "__main__.py"}
#: Folders of the top level that are package data, not code.
DATA_DIRS = {"data"}
#: Modules that share a name stem (with each other or with a package) and one job:
#: every package's ``__init__``; the name tables (the generic one in core, the attentions' and
#: the models') and the commands named like the package they drive.
SAME_STEM_ALLOWED = {
    "__init__": None,  # any number of them
    "registry": {"core/registry.py", "attention/registry.py", "models/registry.py"},
    "gate": {"gate/", "cli/commands/gate.py"},
    "profile": {"profile/", "cli/commands/profile.py"},
    "suite": {"suite/", "cli/commands/suite.py"},
}


def _modules() -> dict[str, Path]:
    mods = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = p.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = p
    return mods


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    """hilobench modules ``path`` imports anywhere: in functions, and under ``if
    TYPE_CHECKING:`` too. A type-only import never runs, but it is still a dependency: a
    module that names another's types cannot be understood, moved or tested without it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))

    def owner(name: str) -> str:
        while name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {owner(a.name) for a in node.names if a.name.startswith("hilobench")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hilobench"):
            base = str(node.module)
            for a in node.names:
                full = f"{base}.{a.name}"
                out.add(full if full in known else owner(base))
    return out


def test_no_module_is_large() -> None:
    big = {n: len(p.read_text().splitlines()) for n, p in _modules().items()}
    assert {n: k for n, k in big.items() if k > MAX_LINES} == {}


def test_every_module_says_what_it_owns() -> None:
    for name, p in _modules().items():
        doc = ast.get_docstring(ast.parse(p.read_text(encoding="utf-8")))
        assert doc and len(doc) > 20, f"{name} has no opening docstring"


def test_no_import_cycles() -> None:
    mods = _modules()
    graph = {m: _imports(p, mods) - {m} for m, p in mods.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(n) :] + [n]))
            if n not in state:
                visit(n, [*path, n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_the_checker_finds_a_cycle(tmp_path: Path) -> None:
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("def f():\n    from hilobench.b import g\n")
    b.write_text("from hilobench.a import f\n")
    known = {"hilobench.a": a, "hilobench.b": b}
    assert _imports(a, known) == {"hilobench.b"} and _imports(b, known) == {"hilobench.a"}
    # a type-only import is a dependency too
    b.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from hilobench.a import f\n"
    )
    assert _imports(b, known) == {"hilobench.a"}


def _layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for each import of a module ``b`` in a later package than ``a``'s. The top
    level's ``hilobench`` (the version) stands below every package, ``hilobench.__main__``
    (the command line) above them."""

    def rank(module: str) -> int:
        parts = module.split(".")
        if len(parts) == 1:
            return -1
        return LAYERS.index(parts[1]) if parts[1] in LAYERS else len(LAYERS)

    return [f"{a} -> {b}" for a in sorted(graph) for b in sorted(graph[a]) if rank(b) > rank(a)]


def test_packages_form_layers() -> None:
    mods = _modules()
    packages = {m.split(".")[1] for m in mods if m.count(".") >= 1 and m != "hilobench.__main__"}
    assert packages == set(LAYERS), "a package is missing from LAYERS (or LAYERS names a gone one)"
    graph = {m: _imports(p, mods) - {m} for m, p in mods.items()}
    assert _layer_violations(graph) == []


def test_the_checker_finds_an_upward_import(tmp_path: Path) -> None:
    low, high = tmp_path / "low.py", tmp_path / "high.py"
    low.write_text("import hilobench\ndef f():\n    from hilobench.cli.high import g\n")
    high.write_text("from hilobench.core.low import f\n")
    top = tmp_path / "__init__.py"
    top.write_text('"""The version."""\n')
    known = {"hilobench": top, "hilobench.core.low": low, "hilobench.cli.high": high}
    graph = {m: _imports(p, known) - {m} for m, p in known.items()}
    assert _layer_violations(graph) == ["hilobench.core.low -> hilobench.cli.high"]


def _top_level_strays(root: Path) -> list[str]:
    """What ``root`` holds besides the top-level files, packages and package data."""
    out = []
    for p in sorted(root.iterdir()):
        if p.name == "__pycache__" or p.name in TOP_LEVEL_FILES:
            continue
        if p.is_dir() and (p.name in DATA_DIRS or (p / "__init__.py").is_file()):
            continue
        out.append(p.name)
    return out


def test_top_level_holds_only_packages() -> None:
    assert _top_level_strays(PKG) == []


def test_the_checker_finds_a_top_level_module(tmp_path: Path) -> None:
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "__init__.py").write_text("")
    (tmp_path / "data").mkdir()
    assert _top_level_strays(tmp_path) == []
    (tmp_path / "bench.py").write_text("")
    (tmp_path / "loose").mkdir()  # a folder that is no package
    assert _top_level_strays(tmp_path) == ["bench.py", "loose"]


def _shared_stems(root: Path) -> dict[str, set[str]]:
    """Name stem → the modules (``pkg/mod.py``) and packages (``pkg/``) that share it, where
    more than one does and the allow-list does not cover them all."""
    seen: dict[str, set[str]] = {}
    for p in root.rglob("*.py"):
        if "__pycache__" not in p.parts:
            seen.setdefault(p.stem, set()).add(p.relative_to(root).as_posix())
    for d in root.iterdir():
        if (d / "__init__.py").is_file():
            seen.setdefault(d.name, set()).add(d.name + "/")
    out = {}
    for stem, where in seen.items():
        allowed = SAME_STEM_ALLOWED.get(stem, set())
        if len(where) > 1 and allowed is not None and not where <= allowed:
            out[stem] = where
    return out


def test_one_name_one_job() -> None:
    assert _shared_stems(PKG) == {}


def test_the_checker_finds_a_shared_name(tmp_path: Path) -> None:
    for rel in ("core/stats.py", "core/__init__.py", "measure/__init__.py", "cli/commands/gate.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    (tmp_path / "gate").mkdir()
    (tmp_path / "gate" / "__init__.py").write_text("")
    assert _shared_stems(tmp_path) == {}
    (tmp_path / "measure" / "stats.py").write_text("")
    assert _shared_stems(tmp_path) == {"stats": {"core/stats.py", "measure/stats.py"}}
