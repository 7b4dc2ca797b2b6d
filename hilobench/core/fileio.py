"""Every file hilobench writes goes through here: whole files are written to a temporary name in
the target directory, synced and renamed into place (a reader never sees half a file, a failed
write leaves nothing behind); rows are appended and synced line by line. Every file gets the
mode the user's umask gives (0644 under 022), as any program's files do. Any OSError (a full
disk, no permission, a read-only file system, a missing or non-directory parent) becomes one
:class:`~hilobench.core.errors.ConfigError` line naming the path and the reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from hilobench.core.errors import ConfigError


def os_reason(e: OSError) -> str:
    """The reason of an OSError in words, without the path (the caller names it)."""
    return e.strerror or type(e).__name__


def _write_error(path: Path, e: OSError) -> ConfigError:
    return ConfigError(f"cannot write {str(path)!r}: {os_reason(e)}")


def _special(path: Path) -> bool:
    """True for an existing target that is not a regular file (``/dev/stdout``, a FIFO): it is
    written in place, never replaced by a rename."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def make_dir(path: Path | str) -> Path:
    """Create a directory (and its parents); an OSError as one line naming it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create directory {str(path)!r}: {os_reason(e)}") from None
    return path


def _make_parent(path: Path) -> None:
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise ConfigError(f"cannot write {str(path)!r}: {str(parent)!r} is not a directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _write_error(path, e) from None
    if path.is_dir():
        raise ConfigError(f"cannot write {str(path)!r}: it is a directory")


def _new_temp(path: Path) -> Path:
    """Create an empty, unused ``.<name>.<random><suffix>`` beside ``path``. Unlike
    ``tempfile.mkstemp`` (always 0600), its mode is 0666 less the umask, as for any file a
    program creates: results are readable by whom the user's umask allows (0644 under 022)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{path.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(errno.EEXIST, "no unused temporary name", str(path))


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that wants a file name (matplotlib's
    ``savefig``); renamed onto ``path`` when the block ends without error, removed otherwise."""
    path = Path(path)
    _make_parent(path)
    try:
        tmp = _new_temp(path)
    except OSError as e:
        raise _write_error(path, e) from None
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise _write_error(path, e) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_text_atomic(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (temp file, fsync, rename)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (temp file, fsync, rename)."""
    path = Path(path)
    if _special(path):  # a device or pipe: write through, reporting what it says
        try:
            with open(path, "wb") as f:
                f.write(data)
                f.flush()
        except OSError as e:
            raise _write_error(path, e) from None
        return
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()


def append_text(path: Path | str, text: str) -> None:
    """Append ``text`` to ``path`` and push it to disk now; what was there before stays."""
    path = Path(path)
    try:
        with open(path, "ab", buffering=0) as f:
            start = f.tell()
            data = memoryview(text.encode("utf-8"))
            try:
                while data:
                    n = f.write(data)
                    if not n:
                        raise OSError(errno.EIO, "short write")
                    data = data[n:]
                os.fsync(f.fileno())
            except OSError:
                with contextlib.suppress(OSError):  # no half line after the kept rows
                    f.truncate(start)
                raise
    except OSError as e:
        raise _write_error(path, e) from None
