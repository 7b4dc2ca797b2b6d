"""A preloaded worker: one process imports torch and the measuring code once, then forks a fresh
child per job, so a run pays the interpreter and torch start (~2 s a worker on 2 cores) once.

Each job still runs in a process of its own, which ends with it: a crash, an out-of-memory kill
or a hang of one case cannot touch another, and a case's allocator caches and resident-set
high-water mark begin where a fresh worker's would (torch imported, nothing run). The child
leads a session of its own, as a plain worker does, so the runner ends it (and whatever it
started) with the same signals; it gets the runner's environment and working directory of the
moment, and dies with the server, which dies with the runner.

Why only CPU jobs: a CUDA driver initialised before a fork is unusable in the child, and
asking whether a GPU exists may initialise it, so GPU jobs keep the plain worker. Why the
warm-up runs on one thread: OpenMP's thread pool does not survive a fork (a child that enters
a parallel region waits for threads that are gone), so the server pays the one-off warm-up
(:func:`hilobench.measure.warm.warm_process`, ~1.3 s) on one thread, and refuses to serve (the
run then uses plain workers) if a thread started all the same. ``HILOBENCH_PRELOAD=0`` turns it
off. What a library reads once at import (``OMP_NUM_THREADS``, torch's own switches) comes from
the environment of the run's first CPU job, which starts the server.

Protocol, one JSON line each way: ``{"job", "out", "err", "env", "cwd"}`` in; ``{"pid"}`` when the
child runs, then ``{"pid", "rc"}`` when it ended (``rc`` negative: killed by that signal).
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import select
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from hilobench.measure.procenv import kill_piped

#: The environment switch: "0" runs every job in a plain ``python -m hilobench.run.worker``.
PRELOAD_ENV = "HILOBENCH_PRELOAD"
#: Seconds the server may take to import torch and warm the tracer before the run gives up on it.
START_TIMEOUT_S = 120.0


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _resident_file_pages() -> list[tuple[int, int]]:
    """(address, length) runs of the pages of mapped files (the libraries' code) resident in
    this process. A fork copies no page table entries of such mappings, so a child would
    fault them in again during its first calls and report them as a rise of its resident set
    (measured: +3 MB on a 10 MB attention layer) where a fresh worker has them mapped."""
    page = os.sysconf("SC_PAGE_SIZE")
    runs: list[tuple[int, int]] = []
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
        with open("/proc/self/pagemap", "rb") as pm:
            for line in maps:
                f = line.split()
                if len(f) < 6 or f[4] == "0" or not f[1].startswith("r"):
                    continue  # anonymous (copied by the fork) or unreadable
                lo, hi = (int(x, 16) for x in f[0].split("-"))
                pm.seek(lo // page * 8)
                bits = memoryview(pm.read((hi - lo) // page * 8)).cast("Q")
                start = None
                for i, b in enumerate([*bits, 0]):
                    if b >> 63 and start is None:
                        start = i
                    elif not b >> 63 and start is not None:
                        runs.append((lo + start * page, (i - start) * page))
                        start = None
    except (OSError, ValueError):
        return []
    return runs


def _map_again(runs: list[tuple[int, int]]) -> None:
    """Map the parent's resident file pages into this child (``MADV_POPULATE_READ``: from the
    page cache, no reads from disk), best effort."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    for addr, length in runs:
        libc.madvise(addr, length, 22)  # MADV_POPULATE_READ, Linux 5.14+


def _child(req: dict[str, Any], runs: list[tuple[int, int]]) -> None:
    """In the forked child: become a worker process for ``req`` and never return."""
    rc = 1
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        err = os.open(req["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(err, 2)
        os.environ.clear()
        os.environ.update(req["env"])
        os.chdir(req["cwd"])
        _map_again(runs)
        from hilobench.run import worker

        rc = worker.main([req["job"], req["out"]])
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)


def serve() -> int:
    """The server's loop: one child at a time, each reaped before the next request is read."""
    from hilobench.run import worker

    worker._die_with_parent()
    import torch

    import hilobench.run.engine  # noqa: F401  (the measuring code, once)
    from hilobench.measure.warm import warm_process

    before, n = _threads(), torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: no OpenMP pool starts (every job sets its count)
    warm_process(count=True)
    torch.set_num_threads(n)
    if _threads() != before:  # something started a thread pool: forking is not safe
        print(json.dumps({"error": "a thread started while warming up"}), flush=True)
        return 1
    runs = _resident_file_pages()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(req, runs)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"pid": pid, "rc": os.waitstatus_to_exitcode(status)}), flush=True)
    return 0


class _Lines:
    """Lines from a pipe, read with a timeout."""

    def __init__(self, fd: int):
        self.fd, self.buf = fd, b""

    def read(self, timeout: float | None) -> dict[str, Any] | None:
        """The next JSON line; None on timeout; EOFError when the server is gone."""
        end = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = None if end is None else max(end - time.monotonic(), 0.0)
            if not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError("the preloaded worker is gone")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)


class Child:
    """A forked worker, driven as :class:`subprocess.Popen` is (``pid``, ``poll``, ``wait``,
    ``send_signal``, ``communicate``, ``returncode``), so the runner treats both alike."""

    stdout = None
    stderr = None

    def __init__(self, server: Server, pid: int, err_path: Path, args: list[str]):
        self.server, self.pid, self.err_path, self.args = server, pid, err_path, args
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            try:
                msg = self.server.lines.read(timeout)
            except EOFError:  # the server died: the child died with it (see _die_with_parent)
                self.server.close()
                # a signal from outside (scancel, preemption, Ctrl-C) reaches the server and its
                # children together: the child ended by that signal, not by the kill after it
                died = self.server.proc.returncode
                msg = {"pid": self.pid, "rc": died if died is not None and died < 0 else -9}
            if msg is None:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            self.returncode = int(msg["rc"])
        return self.returncode

    def poll(self) -> int | None:
        try:
            return self.wait(0.0)
        except subprocess.TimeoutExpired:
            return None

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def communicate(self, timeout: float | None = None) -> tuple[None, str]:
        self.wait(timeout)
        return None, self.err_path.read_text(encoding="utf-8", errors="replace")


class Server:
    """The runner's end of a preloaded worker process."""

    def __init__(self, env: dict[str, str]):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hilobench.run.forkserver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        self.lines = _Lines(self.proc.stdout.fileno())
        try:
            msg = self.lines.read(START_TIMEOUT_S)
        except EOFError:
            msg = None
        if not (msg or {}).get("ready"):
            self.close()
            raise OSError("the preloaded worker did not start")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def start(self, job: Path, out: Path, err: Path, env: dict[str, str]) -> Child:
        """Fork a worker for ``job``; OSError when the server cannot."""
        req = {"job": str(job), "out": str(out), "err": str(err), "env": env,
               "cwd": os.getcwd()}  # fmt: skip
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
            msg = self.lines.read(START_TIMEOUT_S)
        except (OSError, EOFError) as e:
            self.close()
            raise OSError("the preloaded worker is gone") from e
        if msg is None or "pid" not in msg:
            self.close()
            raise OSError("the preloaded worker did not fork")
        return Child(self, int(msg["pid"]), err, [sys.executable, "-m", "hilobench.run.forkserver"])

    def close(self) -> None:
        kill_piped(self.proc)


_server: Server | None = None
_failed = False


def wanted(job: dict[str, Any]) -> bool:
    """Whether ``job`` may run in a forked worker: on Linux, not turned off, CPU only."""
    if not sys.platform.startswith("linux") or os.environ.get(PRELOAD_ENV, "1") == "0":
        return False
    cases = [job["case"]] if "case" in job else list(job.get("cases") or [])
    devices = [c.get("device", "cpu") for c in cases] or [job.get("device", "")]
    return job.get("kind") in ("case", "group", "peak") and all(d == "cpu" for d in devices)


def start(job: Path, out: Path, err: Path, env: dict[str, str]) -> Child | None:
    """A forked worker for ``job`` from this process's server (started on first use), or None
    when there is none (it failed to start or died: the run goes on with plain workers)."""
    global _server, _failed
    if _failed:
        return None
    try:
        if _server is None or not _server.alive():
            _server = Server(env)
            atexit.register(shutdown)
        return _server.start(job, out, err, env)
    except OSError:
        _server, _failed = None, True
        return None


def shutdown() -> None:
    """End this process's server, if any (its stdin closes, its loop ends)."""
    global _server
    if _server is not None:
        _server.close()
        _server = None


if __name__ == "__main__":
    sys.exit(serve())
