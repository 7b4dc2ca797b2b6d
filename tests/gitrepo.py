"""Throwaway git repositories for the gate's tests: a copy of this checkout's ``hilobench``
plus a suite, committed, so that a base revision can be checked out and measured."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity; its stdout."""
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def copy_package(root: Path, suite: str, suite_name: str = "tiny.yaml") -> Path:
    """Copy this hilobench into ``root`` (made if missing) with ``suite`` beside it."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "hilobench", root / "hilobench",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    (root / suite_name).write_text(suite)
    return root


def commit_all(repo: Path, message: str) -> None:
    """``git init`` (when needed) and commit everything in ``repo``."""
    if not (repo / ".git").exists():
        git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
