"""The temporary directories that carry a job to a worker process and its rows back, and the
sweep of those a killed run left behind.

A run ended by SIGKILL (or a crash of the interpreter) cannot remove its job directory, and
each such kill would leave one more in the temp dir. Each directory's name carries the pid of
the run that made it (``hilobench-job-<pid>-<random>``), so the next run removes those whose
run is gone: the pid belongs to no process, or to one that started after the directory was
last written (the pid was reused). A directory of a live run, of another user, or without a
pid in its name (an older hilobench's) is never touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

PREFIX = "hilobench-job-"
_NAME = re.compile(rf"^{PREFIX}(\d+)-[A-Za-z0-9_]+$")
_swept = False


def job_dir() -> tempfile.TemporaryDirectory[str]:
    """A fresh job directory named after this process (removed when the block ends)."""
    return tempfile.TemporaryDirectory(prefix=f"{PREFIX}{os.getpid()}-")


def _run_is_gone(pid: int, last_written: float) -> bool:
    import psutil  # ~20 ms: only when a job directory was left behind

    if pid == os.getpid():
        return False
    try:
        started = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:  # cannot tell: keep it
        return False
    return started > last_written + 1.0  # one second for clocks of coarse resolution


def sweep_job_dirs(root: Path | str | None = None) -> list[Path]:
    """Remove the job directories under ``root`` (the temp dir) whose run is gone; return
    them. Best effort: a directory that cannot be read or removed is left."""
    base = Path(root if root is not None else tempfile.gettempdir())
    removed = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return []
    for entry in entries:
        m = _NAME.match(entry.name)
        if not m:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not entry.is_dir(follow_symlinks=False) or st.st_uid != os.getuid():
            continue
        if _run_is_gone(int(m.group(1)), st.st_mtime):
            with contextlib.suppress(OSError):
                shutil.rmtree(entry.path)
                removed.append(Path(entry.path))
    return removed


def sweep_once() -> None:
    """:func:`sweep_job_dirs` the first time a process calls it (a run's first worker)."""
    global _swept
    if not _swept:
        _swept = True
        sweep_job_dirs()
