"""Fingerprint of the machine and software a run was measured on.

Every run stores its fingerprint and every row its :func:`env_id`, a hash of the identity
fields (hardware, OS, Python and library versions). That id is too strict to decide whether
speeds are comparable: two VMs of one type differ in usable RAM by a few hundred KB and pick up
kernel updates. Runs are therefore grouped and compared by their :func:`machine_class` (CPU
model, physical cores, threads, GPU, torch, CUDA, dtype); the rest of the fingerprint is shown
as :func:`informational_differences` and never splits or refuses. The host name is never
recorded.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from hilobench import __version__

__all__ = [
    "CLASS_FIELDS",
    "IDENTITY_FIELDS",
    "INFO_FIELDS",
    "class_differences",
    "code_state",
    "compare_envs",
    "env_id",
    "fingerprint",
    "git_state",
    "informational_differences",
    "machine_class",
    "machine_class_label",
]

SCHEMA_VERSION = 1

# Fields hashed into env_id (kept for old runs and resumes; grouping uses CLASS_FIELDS).
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

#: What makes speeds comparable: runs that agree on these are one machine type.
CLASS_FIELDS: tuple[str, ...] = (
    "cpu_model",
    "cpu_physical_cores",
    "threads",
    "gpu_name",
    "torch",
    "cuda",
    "dtype",
)
#: Class fields a run can hold several values of, one per row (a dtype or thread sweep).
ROW_FIELDS: tuple[str, ...] = ("threads", "dtype")
#: Recorded differences worth showing that never split or refuse: a VM's usable RAM, kernel
#: build and library patch levels vary within one machine type.
INFO_FIELDS: tuple[str, ...] = (
    "ram_total_bytes",
    "os",
    "arch",
    "python",
    "cpu_logical_cores",
    "cudnn",
    "mkl",
    "mkldnn",
    "gpu_memory_bytes",
    "gpu_capability",
    "numpy",
    "timm",
    "fvcore",
)
#: Python packages whose versions the fingerprint records (read from metadata, not imported).
PACKAGES: tuple[str, ...] = ("numpy", "timm", "fvcore")


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
        return psutil.cpu_count(logical=False), psutil.cpu_count(logical=True) or logical
    except Exception:  # unsupported platform
        return None, logical


def _ram_total() -> int | None:
    try:
        return int(psutil.virtual_memory().total)
    except Exception:  # unsupported platform
        return None


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_state(
    path: str | Path | None = None, exclude: Iterable[str | Path] = ()
) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git checkout that holds the hilobench package.

    Returns (None, None) when hilobench is not run from a git checkout (e.g. installed from a
    wheel inside some other repository), when git is missing, or when there is no commit yet.
    ``dirty`` counts modified and untracked, non-ignored files, except those under
    ``exclude`` (a run directory inside the checkout must not make its own code look edited).
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
        skip = [f":(exclude,top){r}" for r in _inside(top, exclude)]
        dirty = bool(git("status", "--porcelain", "--", ":(top)", *skip))
    except (OSError, subprocess.SubprocessError, ValueError):
        return None, None
    return commit or None, dirty


def _inside(top: Path, paths: Iterable[str | Path]) -> list[str]:
    """``paths`` that lie inside the checkout ``top``, relative to it (posix)."""
    out = []
    for p in paths:
        try:
            rel = Path(p).resolve().relative_to(top)
        except ValueError:  # outside the checkout: git would refuse the pathspec
            continue
        if rel.parts:
            out.append(rel.as_posix())
    return out


def code_state(exclude: Iterable[str | Path] = ()) -> dict[str, Any]:
    """The code a measurement ran: the hilobench version and, in a git checkout, its commit
    and whether it had uncommitted changes (None outside a checkout). Row columns."""
    commit, dirty = git_state(exclude=exclude)
    return {"hilobench_version": __version__, "git_commit": commit, "git_dirty": dirty}


def _cuda_info(device: str) -> dict:
    import torch  # torch ~1.5 s: grouping stored runs never needs it

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
    import torch  # torch ~1.5 s: here, so that grouping stored runs never pays for it

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
        **{name: _package_version(name) for name in PACKAGES},
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


def _text(value: Any) -> str:
    return "" if value is None else " ".join(str(value).split())


def _order(value: str) -> tuple[int, str]:
    """Thread counts in numeric order, names in alphabetical order."""
    return (int(value), "") if value.isdigit() else (0, value)


def _values(text: str) -> set[str]:
    return {v for v in text.split("+") if v}


def machine_class(env: Mapping[str, Any], rows: Iterable[Mapping[str, Any]] = ()) -> dict[str, str]:
    """The machine type a run measured on: :data:`CLASS_FIELDS` as strings ('' = unknown).

    Works on any recorded ``env.json`` (old ones included). ``threads`` and ``dtype`` are per
    row, so they come from ``rows`` where rows record them (several values joined with '+',
    e.g. 'bfloat16+float32'), else from ``env``.
    """
    rows = list(rows)
    out: dict[str, str] = {}
    for f in CLASS_FIELDS:
        vals = {_text(r.get(f)) for r in rows} - {""} if f in ROW_FIELDS else set()
        out[f] = "+".join(sorted(vals, key=_order)) or _text(env.get(f))
    return out


def machine_class_label(cls: Mapping[str, str], *, dtype: bool = True) -> str:
    """Human-readable class, e.g. 'AMD EPYC · 2 cores · 2 threads · cpu · torch 2.14.1 ·
    CUDA 13.0 · float32'. Every field appears, so two classes never share a label."""
    parts = [
        cls.get("cpu_model") or "unknown CPU",
        f"{cls.get('cpu_physical_cores') or '?'} cores",
        f"{cls.get('threads') or '?'} threads",
        cls.get("gpu_name") or "cpu",
        f"torch {cls.get('torch') or '?'}",
        f"CUDA {cls.get('cuda') or 'none'}",
    ]
    if dtype:
        parts.append(cls.get("dtype") or "dtype ?")
    return " · ".join(parts)


def class_differences(a: Mapping[str, str], b: Mapping[str, str]) -> list[str]:
    """Why two machine classes are not comparable; empty when they are.

    Rows pair by case key, which holds the dtype and the requested threads, so for those
    fields two runs conflict only when they share no value (a float32 run against a
    bfloat16+float32 one still pairs its float32 cases).
    """
    out = []
    for f in CLASS_FIELDS:
        va, vb = a.get(f, ""), b.get(f, "")
        if va == vb:
            continue
        if f in ROW_FIELDS and _values(va) & _values(vb):
            continue
        out.append(f"{f}: {va or None!r} -> {vb or None!r}")
    return out


def informational_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Recorded differences that do not change the machine class (RAM size, kernel build,
    library patch levels), for display only. A field absent from either side (older
    fingerprints lack some) is skipped rather than shown as a change."""
    return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in INFO_FIELDS if k in a and k in b and a[k] != b[k]]
