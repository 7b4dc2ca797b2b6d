"""One writer per run directory: an exclusive lock held for the whole run.

Two runs appending to one ``rows.jsonl`` (say a ``--resume`` started while the interrupted run
was still finishing its case) measure cases twice and interleave their rows. So every command
that writes into a run directory holds ``.lock`` in it, taken with ``flock``: the kernel drops
the lock however its holder ends, so a lock left behind by a killed run is free and is taken
over, while a live holder is refused with its pid. The file records the holder's pid and start
time for that message; a holder that ends normally deletes it.

Where ``flock`` is not supported (some network file systems) the pid in the file decides: a
lock whose pid is alive is refused, any other is taken over.

Why not the ``filelock`` package (torch already installs it): its lock says only that the file
is locked, while this one tells the user which run holds the directory (pid, start time and
command line) so they know what to wait for or stop, tells a resumed run what lock it took over
from a killed one, and removes a run directory it created when the lock is refused. The
holder's record and the flock-less fallback are what would be left to write around filelock,
whose API for them differs between the releases that torch's floor and newest pins bring.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from hilobench.core.errors import ConfigError

LOCK_NAME = ".lock"
_NO_FLOCK = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _read_holder(fd: int) -> dict[str, Any]:
    """What a lock file says about its holder ({} when empty or unreadable)."""
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def describe(holder: dict[str, Any]) -> str:
    """``pid 1234, started 2024-05-01T12:00:00+00:00`` (or what is known of it)."""
    parts = [f"pid {holder['pid']}" if "pid" in holder else "pid unknown"]
    if holder.get("started"):
        parts.append(f"started {holder['started']}")
    return ", ".join(parts)


class RunLock:
    """Exclusive hold on a run directory (created if missing) for as long as it is held.

    ``took_over`` tells, after :meth:`acquire`, what a lock file left by a run that is gone
    said about its holder (None when there was no such file).
    """

    def __init__(self, run_dir: Path | str):
        self.dir = Path(run_dir)
        self.path = self.dir / LOCK_NAME
        self.took_over: dict[str, Any] | None = None
        self._fd: int | None = None
        self._made_dir = False

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock or raise ConfigError naming the run that holds it."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this object")
        self._made_dir = not self.dir.exists()
        self.dir.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                self._lock(fd)
            except BaseException:
                os.close(fd)
                raise
            # a holder that ended between our open and flock deleted the file we opened:
            # holding that orphan would not exclude anyone, so open the path again
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                os.close(fd)
                continue
            fst = os.fstat(fd)
            if (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino):
                break
            os.close(fd)
        self.took_over = _read_holder(fd) or None
        me = {"pid": os.getpid(), "started": datetime.now(UTC).isoformat(timespec="seconds")}
        me["command"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:8]])[:300]
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode("utf-8"), 0)
        self._fd = fd
        return self

    def _lock(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            holder = _read_holder(fd)
        except OSError as e:
            if e.errno not in _NO_FLOCK:
                raise
            holder = _read_holder(fd)  # no flock here: only the pid can tell
            if holder.get("pid") == os.getpid() or not _pid_alive(holder.get("pid")):
                return
        raise ConfigError(
            f"run directory {str(self.dir)!r} is in use by another run ({describe(holder)}); "
            "wait for it to end, or choose another --out"
        )

    def release(self) -> None:
        """Delete the lock file, then let go of the lock (so nobody takes an orphan file)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None
        if self._made_dir:  # refused or failed before writing anything: leave no empty dir
            try:
                self.dir.rmdir()
            except OSError:
                pass

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
