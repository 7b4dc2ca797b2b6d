"""Fingerprint of the machine and software a run was measured on.

Speeds are only comparable between identical environments, so every run stores its
fingerprint and every row its :func:`env_id`. The id hashes identity fields only (hardware,
OS, Python and library versions); settings (threads, cuDNN/TF32 flags), the hilobench version,
the git commit and the timestamp are recorded but do not change it. The host name is never
recorded.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path

import torch

__all__ = ["IDENTITY_FIELDS", "fingerprint", "env_id", "compare_envs", "git_state"]

SCHEMA_VERSION = 1

# Fields that define "the same machine and software"; anything else is informational.
IDENTITY_FIELDS: tuple[str, ...] = (
    "cpu_model",
    "cpu_physical_cores",
    "cpu_logical_cores",
    "ram_total_bytes",
    "os",
    "arch",
    "python",
    "torch",
    "cuda",
    "cudnn",
    "mkl",
    "mkldnn",
    "gpu_name",
    "gpu_memory_bytes",
    "gpu_capability",
)


def _cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        for line in text.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def _cores() -> tuple[int | None, int | None]:
    """(physical, logical) core counts; physical is None where it cannot be told."""
    logical = os.cpu_count()
    try:
        import psutil

        return psutil.cpu_count(logical=False), psutil.cpu_count(logical=True) or logical
    except Exception:  # psutil missing or unsupported platform
        return None, logical


def _ram_total() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:  # psutil missing or unsupported platform
        return None


def git_state(path: str | Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git checkout that holds the hilobench package.

    Returns (None, None) when hilobench is not run from a git checkout (e.g. installed from a
    wheel inside some other repository), when git is missing, or when there is no commit yet.
    ``dirty`` counts modified and untracked, non-ignored files.
    """
    pkg_dir = Path(path) if path is not None else Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(pkg_dir), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()

    try:
        top = Path(git("rev-parse", "--show-toplevel")).resolve()
        if path is None and not (top / pkg_dir.name / "__init__.py").resolve().samefile(
            pkg_dir / "__init__.py"
        ):
            return None, None
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain"))
    except (OSError, subprocess.SubprocessError, ValueError):
        return None, None
    return commit or None, dirty


def _cuda_info(device: str) -> dict:
    dev = torch.device(device)
    info: dict = {"gpu_name": None, "gpu_memory_bytes": None, "gpu_capability": None}
    if dev.type != "cuda" or not torch.cuda.is_available():
        return info
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    info["gpu_name"] = props.name
    info["gpu_memory_bytes"] = int(props.total_memory)
    info["gpu_capability"] = f"{props.major}.{props.minor}"
    return info


def fingerprint(device: str = "cpu", threads: int | None = None) -> dict:
    """Describe the environment of a run as a JSON-ready dict.

    ``threads`` is the intra-op thread count the run uses; None records the one in effect.
    GPU fields are filled only for a CUDA ``device``, so a CPU run's id does not depend on
    which GPU the host happens to have.
    """
    from hilobench import __version__

    physical, logical = _cores()
    commit, dirty = git_state()
    cudnn_version = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    fp: dict = {
        "schema": SCHEMA_VERSION,
        "cpu_model": _cpu_model(),
        "cpu_physical_cores": physical,
        "cpu_logical_cores": logical,
        "ram_total_bytes": _ram_total(),
        "os": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": cudnn_version,
        "mkl": bool(torch.backends.mkl.is_available()),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "device": str(device),
        **_cuda_info(device),
        "threads": int(threads) if threads is not None else torch.get_num_threads(),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "hilobench_version": __version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "timestamp": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    return fp


def env_id(fp: dict) -> str:
    """Short stable hash (12 hex digits) of the identity fields of a fingerprint."""
    identity = {k: fp.get(k) for k in IDENTITY_FIELDS}
    blob = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def compare_envs(a: dict, b: dict) -> list[str]:
    """Human-readable differences in identity fields; an empty list means the same environment."""
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in IDENTITY_FIELDS if a.get(k) != b.get(k)]
