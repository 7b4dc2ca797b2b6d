"""The base revision on disk: a temporary git worktree, removed again whatever happens.

The gate measures the base with the base's own code, so it needs that code checked out beside
the working tree; a worktree shares the repository's objects, so this is fast and offline.
A stop signal that arrives while the worktree is being removed waits until it is gone.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hilobench.gate.gate_errors import GateError

#: Where a revision keeps the entry point of a gate side, newest layout first: (file, module).
#: Revisions from before the package layout ran gate jobs in their one worker module.
SIDE_ENTRIES = (
    ("hilobench/gate/side_worker.py", "hilobench.gate.side_worker"),
    ("hilobench/worker.py", "hilobench.worker"),
)


def side_entry(root: Path) -> str | None:
    """The module that runs a gate side in the checkout at ``root``; None when it has none."""
    return next((mod for path, mod in SIDE_ENTRIES if (root / path).is_file()), None)


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=check, timeout=120
    )


def repo_root(path: Path | str = ".") -> Path:
    """Top of the git checkout holding ``path``; GateError when there is none."""
    try:
        top = _git(Path(path), "rev-parse", "--show-toplevel").stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise GateError(f"{Path(path).resolve()} is not inside a git checkout") from None
    return Path(top).resolve()


@contextmanager
def held_signals() -> Iterator[None]:
    """Hold SIGINT / SIGTERM during a block that must finish (removing the worktree), then
    deliver the first one to the handler that was in place."""
    got: list[int] = []
    sigs = (signal.SIGINT, signal.SIGTERM)
    try:
        old = {s: signal.signal(s, lambda n, _f: got.append(n)) for s in sigs}
    except ValueError:  # not the main thread: signals are not ours to hold
        yield
        return
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if got:
            signal.raise_signal(got[0])


@contextmanager
def checkout(repo: Path, rev: str) -> Iterator[tuple[Path, str]]:
    """REV checked out into a temporary git worktree: yields (path, commit); removed on exit."""
    try:
        commit = _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").stdout
    except subprocess.CalledProcessError:
        raise GateError(f"unknown revision {rev!r} in {repo}") from None
    commit = commit.strip()
    tmp = Path(tempfile.mkdtemp(prefix="hilobench-gate-base-"))
    path = tmp / "base"
    try:
        try:
            _git(repo, "worktree", "add", "--detach", "--quiet", str(path), commit)
        except subprocess.CalledProcessError as e:
            raise GateError(f"cannot check out {rev!r}: {e.stderr.strip()}") from None
        if side_entry(path) is None:
            raise GateError(
                f"revision {rev!r} ({commit[:12]}) has no {SIDE_ENTRIES[0][0]} (nor the older "
                f"{SIDE_ENTRIES[-1][0]}): too old for the gate, or not a hilobench checkout"
            )
        yield path, commit
    finally:
        with held_signals():
            _git(repo, "worktree", "remove", "--force", str(path), check=False)
            shutil.rmtree(tmp, ignore_errors=True)
            _git(repo, "worktree", "prune", check=False)
