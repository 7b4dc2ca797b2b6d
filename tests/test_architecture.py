"""The layout rules of docs/architecture.md, checked: small modules, each documented, no cycles."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "hilobench"
MAX_LINES = 420


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
