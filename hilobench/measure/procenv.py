"""Environment of a measuring subprocess: settings that stop it from being slowed by chance.

- glibc adapts its mmap threshold to a process's history, so in some processes a
  multi-megabyte temporary (an attention matrix) is mapped and unmapped on every call:
  hundreds of page faults per call, up to twice the time, in one process and not the next.
  Fixed thresholds keep such buffers on the heap.
- OpenMP threads spin for a while after each parallel region. When two processes take turns
  (the gate's base and candidate workers), one side's spinning threads steal cores from the
  other's next sample (seen: 1.4x slower calls, and a 10% slowdown of one side measured as
  23%). A short spin lets them sleep; back-to-back calls still find them awake.
Settings the user already exported win, so an experiment can override any of them.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

WORKER_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(1 << 30),
    "GOMP_SPINCOUNT": "10000",
    "KMP_BLOCKTIME": "1",
}


def worker_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default: this process's environment) with :data:`WORKER_ENV` added
    where not already set."""
    env = dict(os.environ if base is None else base)
    for k, v in WORKER_ENV.items():
        env.setdefault(k, v)
    return env


def kill_piped(proc: subprocess.Popen[Any]) -> None:
    """Kill a helper process the caller talks to over pipes (if it still runs), reap it and
    close the pipes: the end of a gate side's worker and of the preloaded worker alike."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for f in (proc.stdin, proc.stdout):
        if f is not None:
            f.close()
