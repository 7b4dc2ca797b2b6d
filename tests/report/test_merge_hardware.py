"""`hilobench merge --ref/--plot`: runs of two machine classes as one models × machines table
with ratios to a reference model, the shape of the paper's table of other GPUs."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hilobench.report.hardware import hardware_table, plot_hardware
from hilobench.report.run_rows import load_runs
from hilobench.store.writer import RunDir

CliRunner = Callable[[list[str]], tuple[int, str, str]]
PAPER = Path(__file__).resolve().parents[2] / "hilobench" / "data" / "paper" / "other_gpus.csv"


def _row(name: str, tp: float, status: str = "ok") -> dict[str, Any]:
    return {"kind": "model", "name": name, "impl": "reference", "mode": "infer", "res": "224",
            "batch": 64, "dtype": "float32", "device": "cuda", "status": status,
            "throughput_median": tp, "case_key": name}  # fmt: skip


def _machine(path: Path, gpu: str, column: str) -> Path:
    """A run directory holding the paper's figures of one GPU (ResNet-50, PVT-S, LITv2-S)."""
    with open(PAPER, newline="") as f:
        paper = {r["model"]: float(r[column]) for r in csv.DictReader(f)}
    run = RunDir(path).create({"env_id": gpu, "gpu_name": gpu})
    for name, model in (("resnet50", "ResNet-50"), ("pvt_s", "PVT-S"), ("litv2_s", "LITv2-S")):
        run.append(_row(name, paper[model]))
    return path


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    return [_machine(tmp_path / "a100", "NVIDIA A100", "a100_img_s"),
            _machine(tmp_path / "v100", "Tesla V100", "v100_img_s")]  # fmt: skip


def test_models_by_machines_with_ratios_to_the_reference(runs: list[Path], tmp_path: Path) -> None:
    table = hardware_table(load_runs(runs), ref="resnet50")
    assert list(table.columns) == ["model", "NVIDIA A100", "Tesla V100", "NVIDIA A100 / resnet50",
                                   "Tesla V100 / resnet50"]  # fmt: skip
    at = table.by("model")
    assert at["litv2_s"]["NVIDIA A100"] == 1874.0
    assert at["litv2_s"]["Tesla V100"] == 1304.0
    assert at["litv2_s"]["NVIDIA A100 / resnet50"] == round(1874 / 1424, 3)
    assert at["litv2_s"]["Tesla V100 / resnet50"] == round(1304 / 1123, 3)
    assert at["resnet50"]["Tesla V100 / resnet50"] == 1.0
    drawn = plot_hardware(table, tmp_path / "x.png", metric="img/s", ref="resnet50")
    assert drawn["Tesla V100 / resnet50"] == (
        ["resnet50", "pvt_s", "litv2_s"],
        [1.0, round(798 / 1123, 3), round(1304 / 1123, 3)],
    )


def test_merge_command_writes_the_table_and_a_png(
    runs: list[Path], tmp_path: Path, cli: CliRunner
) -> None:
    out, png = tmp_path / "cross.csv", tmp_path / "cross.png"
    code, _, err = cli(["merge", *map(str, runs), "--ref", "resnet50", "--plot", str(png),
                        "--out", str(out)])  # fmt: skip
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = out.read_text().splitlines()
    assert lines[0] == "model,NVIDIA A100,Tesla V100,NVIDIA A100 / resnet50,Tesla V100 / resnet50"
    assert lines[3].startswith("litv2_s,1874.0,1304.0,1.316,1.161")
    code, _, err = cli(["merge", *map(str, runs), "--ref", "nope"])
    assert code == 2 and "'nope'" in err and "litv2_s" in err
    code, _, err = cli(["merge", *map(str, runs), "--plot", str(tmp_path / "x.svg")])
    assert code == 2 and ".png" in err
