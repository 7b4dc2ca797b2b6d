"""Runs are grouped and compared by machine class, not by the exact environment hash: two VMs
of one type that differ in RAM bytes or kernel build compare (the difference is a note), while
another CPU model is still refused."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hilobench.measure import env as menv
from hilobench.report.merge import merge_runs
from hilobench.report.run_rows import load_runs

CliRunner = Callable[[list[str]], tuple[int, str, str]]

RUN = Path(__file__).resolve().parents[2] / "results" / "attention_layers"

CPU_ENV: dict[str, Any] = {
    "cpu_model": "AMD EPYC",
    "cpu_physical_cores": 2,
    "cpu_logical_cores": 2,
    "ram_total_bytes": 25276502016,
    "os": "Linux 6.18.44-fc-v669",
    "torch": "2.14.1+cu130",
    "cuda": "13.0",
    "gpu_name": None,
    "threads": 2,
}


def copy_run(tmp_path: Path, name: str, **changes: Any) -> Path:
    """A copy of a committed run whose env.json carries ``changes`` and a matching env_id."""
    dst = tmp_path / name
    shutil.copytree(RUN, dst, ignore=shutil.ignore_patterns("*.png", "*.md"))
    if changes:
        env = json.loads((dst / "env.json").read_text())
        env.update(changes)
        env["env_id"] = menv.env_id(env)
        (dst / "env.json").write_text(json.dumps(env, indent=2))
    return dst


def same_type_pair(tmp_path: Path) -> tuple[Path, Path]:
    a = copy_run(tmp_path, "a")
    ram = json.loads((a / "env.json").read_text())["ram_total_bytes"]
    b = copy_run(tmp_path, "b", ram_total_bytes=ram - 438_000, os="Linux 6.18.51-fc-v702")
    return a, b


# --- the pure functions ----------------------------------------------------------------------


def test_machine_class_ignores_ram_and_kernel() -> None:
    base = menv.machine_class(CPU_ENV, [{"threads": 2, "dtype": "float32"}])
    assert base == {
        "cpu_model": "AMD EPYC",
        "cpu_physical_cores": "2",
        "threads": "2",
        "gpu_name": "",
        "torch": "2.14.1+cu130",
        "cuda": "13.0",
        "dtype": "float32",
    }
    other = dict(CPU_ENV, ram_total_bytes=1, os="Linux 7.0", timm="1.0", env_id="x")
    assert menv.machine_class(other, [{"threads": 2, "dtype": "float32"}]) == base
    assert menv.class_differences(base, base) == []
    info = menv.informational_differences(CPU_ENV, other)
    assert any(d.startswith("ram_total_bytes:") for d in info)
    assert any(d.startswith("os:") for d in info)
    assert not any(d.startswith("timm") for d in info)  # not recorded on one side: skipped
    label = menv.machine_class_label(base)
    assert (
        label == "AMD EPYC · 2 cores · 2 threads · cpu · torch 2.14.1+cu130 · CUDA 13.0 · float32"
    )


@pytest.mark.parametrize(
    "change, field",
    [
        ({"cpu_model": "Intel Xeon"}, "cpu_model"),
        ({"cpu_physical_cores": 4}, "cpu_physical_cores"),
        ({"torch": "2.15.0+cu130"}, "torch"),
        ({"cuda": "12.8"}, "cuda"),
        ({"gpu_name": "NVIDIA H100"}, "gpu_name"),
        ({"threads": 1}, "threads"),
        ({"dtype": "bfloat16"}, "dtype"),
    ],
)
def test_class_fields_split(change: dict[str, Any], field: str) -> None:
    a = menv.machine_class(dict(CPU_ENV, dtype="float32"))
    b = menv.machine_class({**CPU_ENV, "dtype": "float32", **change})
    diffs = menv.class_differences(a, b)
    assert len(diffs) == 1 and diffs[0].startswith(f"{field}:")
    assert menv.machine_class_label(a) != menv.machine_class_label(b)


def test_row_fields_conflict_only_when_disjoint() -> None:
    mixed = menv.machine_class(CPU_ENV, [{"dtype": "float32"}, {"dtype": "bfloat16"}])
    assert mixed["dtype"] == "bfloat16+float32"
    assert mixed["threads"] == "2"  # rows without threads: the run's recorded count
    f32 = menv.machine_class(CPU_ENV, [{"dtype": "float32"}])
    assert menv.class_differences(mixed, f32) == []
    bf16 = menv.machine_class(CPU_ENV, [{"dtype": "bfloat16"}])
    f16 = menv.machine_class(CPU_ENV, [{"dtype": "float16"}])
    assert menv.class_differences(bf16, f16) == ["dtype: 'bfloat16' -> 'float16'"]


def test_old_env_without_new_fields_loads() -> None:
    old = {k: v for k, v in CPU_ENV.items() if k not in ("cuda", "threads")}
    cls = menv.machine_class(old)
    assert cls["cuda"] == "" and cls["threads"] == "" and cls["cpu_model"] == "AMD EPYC"
    assert "? threads" in menv.machine_class_label(cls)


def test_fingerprint_records_library_versions() -> None:
    fp = menv.fingerprint(threads=1)
    assert {"numpy", "timm", "fvcore"} <= fp.keys()
    assert fp["numpy"]  # numpy is a dependency, so its version is known


# --- compare and merge on a committed run ----------------------------------------------------


def test_same_machine_type_compares_with_a_note(tmp_path: Path, cli: CliRunner) -> None:
    a, b = same_type_pair(tmp_path)
    md = tmp_path / "c.md"
    code, _, err = cli(["compare", str(a), str(b), "--markdown", str(md)])
    assert code == 0, err
    note = " ".join(err.split())
    assert "do not affect comparability" in note and "ram_total_bytes" in note
    assert "6.18.51-fc-v702" in note
    assert "ram_total_bytes" in md.read_text() and "REFUSED" not in md.read_text()


def test_other_cpu_model_is_refused(tmp_path: Path, cli: CliRunner) -> None:
    a = copy_run(tmp_path, "a")
    b = copy_run(tmp_path, "b", cpu_model="Intel Xeon Platinum 8480")
    code, _, err = cli(["compare", str(a), str(b)])
    assert code == 3
    assert "environments differ" in err and "cpu_model" in err
    code, _, err = cli(["compare", str(a), str(b), "--allow-env-mismatch"])
    assert code == 0, err
    assert "overridden" in err


def test_merge_gives_one_column_per_run_named_by_machine_class(
    tmp_path: Path, cli: CliRunner
) -> None:
    a, b = same_type_pair(tmp_path)
    other = copy_run(tmp_path, "c", cpu_model="Intel Xeon Platinum 8480")
    runs = load_runs([a, b])
    assert runs[0].machine == runs[1].machine == "AMD EPYC (2 threads)"
    assert [r.label for r in runs] == ["AMD EPYC (2 threads) · a", "AMD EPYC (2 threads) · b"]
    df = merge_runs(runs)
    assert [c for c in df.columns if "AMD EPYC" in c] == [r.label for r in runs]
    assert len(merge_runs(load_runs([a, b, other])).columns) == len(df.columns) + 1
    code, out, _ = cli(["merge", str(a), str(b)])
    header = out.splitlines()[0]
    assert code == 0 and header.count("AMD EPYC") == 2
