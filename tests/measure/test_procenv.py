"""Measuring subprocesses get fixed allocator and OpenMP settings; the user's own win."""

from __future__ import annotations

import subprocess
import sys

from hilobench.measure.procenv import WORKER_ENV, worker_env


def test_defaults_added_and_user_settings_kept() -> None:
    env = worker_env({"PATH": "/bin", "KMP_BLOCKTIME": "200"})
    assert env["PATH"] == "/bin"
    assert env["KMP_BLOCKTIME"] == "200"
    for k in WORKER_ENV:
        if k != "KMP_BLOCKTIME":
            assert env[k] == WORKER_ENV[k]


def test_a_child_sees_them() -> None:
    code = "import os; print(os.environ['MALLOC_MMAP_THRESHOLD_'])"
    out = subprocess.run([sys.executable, "-c", code], env=worker_env(), capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    assert out.strip() == WORKER_ENV["MALLOC_MMAP_THRESHOLD_"]
