"""Two runs of one machine side by side: `report` draws a series per run and divides each row
only by its own run's reference; `merge` gives a column per run and drops none."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hilobench.report.hardware import hardware_table
from hilobench.report.markdown import build_report
from hilobench.report.merge import merge_runs
from hilobench.report.run_rows import load_runs
from hilobench.store.writer import RunDir

pytest.importorskip("matplotlib")
CliRunner = Callable[[list[str]], tuple[int, str, str]]
ENV = {"env_id": "e1", "cpu_model": "AMD EPYC", "threads": 2, "torch": "2.9"}


def layer(name: str, tp: float, **extra: Any) -> dict[str, Any]:
    return {"kind": "layer", "name": name, "attention": name, "impl": "reference",
            "mode": "infer", "res": "224", "tokens": "14x14", "batch": 64, "dtype": "float32",
            "device": "cpu", "options": {"dim": 768, "heads": 12}, "status": "ok",
            "throughput_median": tp, "latency_ms_p50": 64e3 / tp, "macs": 5e8, "params": 2e6,
            "peak_mem_bytes": 2**20, "case_key": f"{name}{extra.get('batch', 64)}",
            "env_id": "e1", **extra}  # fmt: skip


def model(name: str, tp: float) -> dict[str, Any]:
    return {"kind": "model", "name": name, "impl": "reference", "mode": "infer", "res": "224",
            "batch": 64, "dtype": "float32", "device": "cpu", "status": "ok",
            "throughput_median": tp, "macs": 4e9, "params": 25e6, "peak_mem_bytes": 2**30,
            "case_key": name, "env_id": "e1"}  # fmt: skip


def make_run(path: Path, msa: float, hilo: float, resnet: float, litv2: float) -> Path:
    run = RunDir(path).create(ENV)
    run.append_rows([layer("msa", msa), layer("hilo", hilo), model("resnet50", resnet),
                     model("litv2_s", litv2)])  # fmt: skip
    return path


@pytest.fixture
def two_runs(tmp_path: Path) -> list[Path]:
    # one machine, two hours: run b's machine is slower, and its ratios differ from a's
    return [make_run(tmp_path / "a", 100.0, 200.0, 1000.0, 1200.0),
            make_run(tmp_path / "b", 50.0, 150.0, 400.0, 600.0)]  # fmt: skip


def test_report_of_two_runs_of_one_machine(two_runs: list[Path], tmp_path: Path) -> None:
    rep = build_report(two_runs, tmp_path / "rep")
    bars = rep.figures["throughput_layers.png"]["throughput"]
    assert sorted(bars[0]) == ["hilo a", "hilo b", "msa a", "msa b"]  # a series per run
    assert dict(zip(*bars, strict=True))["hilo a"] == 200.0
    layers = {(r["run"], r["attention"]): r for r in rep.tables["paper_layers"]}
    assert layers["a", "hilo"]["x_msa"] == 2.0  # 200 / a's 100, never b's 50
    assert layers["b", "hilo"]["x_msa"] == 3.0  # 150 / b's 50
    assert layers["a", "hilo"]["paper_x_msa"] == pytest.approx(1029 / 505)
    models = {(r["run"], r["model"]): r for r in rep.tables["paper_models"]}
    assert models["a", "litv2_s"]["x_resnet50"] == 1.2
    assert models["b", "litv2_s"]["x_resnet50"] == 1.5
    assert {"paper_layers_a_reference.png", "paper_layers_b_reference.png"} <= set(rep.figures)
    merged = rep.tables["merged"]
    assert [c for c in merged.columns if "AMD EPYC" in c] == [
        "AMD EPYC (2 threads) · a",
        "AMD EPYC (2 threads) · b",
    ]
    text = rep.path.read_text()
    assert "## Across runs" in text and "## Results: a (" in text and "## Results: b (" in text


def test_paper_columns_only_at_the_paper_setting(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "small").create(ENV)
    small = {"options": {"dim": 64, "heads": 4}}
    run.append_rows([layer("msa", 100.0, **small), layer("hilo", 300.0, **small),
                     layer("msa", 90.0), layer("hilo", 180.0)])  # fmt: skip
    # the dim-64 rows would share the test's case keys: give each its own
    rows = [dict(r, case_key=f"{r['case_key']}-{i}") for i, r in enumerate(run.rows())]
    (run.path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rep = build_report([run.path], tmp_path / "rep")
    table = rep.tables["paper_layers"]
    by_dim = {(r["attention"], r["dim"]): r for r in table}
    assert by_dim["hilo", 64]["x_msa"] == 3.0  # over the dim-64 MSA, not the dim-768 one
    assert by_dim["hilo", 768]["x_msa"] == 2.0
    assert by_dim["hilo", 768]["paper_x_msa"] == pytest.approx(1029 / 505)
    assert by_dim["hilo", 64]["paper_x_msa"] is None  # absent
    text = rep.path.read_text()
    assert "left out for 2 row(s)" in text and "dim 64 ≠ 768" in text and "heads 4 ≠ 12" in text


def test_merge_of_two_runs_of_one_machine(
    two_runs: list[Path], tmp_path: Path, cli: CliRunner
) -> None:
    runs = load_runs(two_runs)
    df = merge_runs(runs).by("name")
    cols = [r.label for r in runs]
    assert df["msa"][cols[0]] == 100.0 and df["msa"][cols[1]] == 50.0
    hw = hardware_table(runs, ref="resnet50").by("model")
    assert hw["litv2_s"][f"{cols[0]} / resnet50"] == 1.2
    assert hw["litv2_s"][f"{cols[1]} / resnet50"] == 1.5
    out = tmp_path / "m.csv"
    code, _, err = cli(["merge", *map(str, two_runs), "--out", str(out)])
    assert code == 0 and "4 rows x 2 run(s)" in " ".join(err.split())
    header = out.read_text().splitlines()[0]
    assert header.endswith("AMD EPYC (2 threads) · a,AMD EPYC (2 threads) · b")


def test_dense_paper_figures_only_at_the_paper_input() -> None:
    from hilobench.report.dense_rows import dense_side_by_side
    from hilobench.report.paper import PAPER_DIR

    def row(window: int, fps: float, res: str) -> dict[str, Any]:
        return {"kind": "model", "name": "litv2_s", "status": "ok", "throughput_median": fps,
                "head": "retinanet", "options": {"head": "retinanet", "window": window},
                "res": res, "batch": 1}  # fmt: skip

    why: dict[str, list[str]] = {}
    at = dense_side_by_side([row(2, 1.0, "800x1280"), row(4, 1.2, "800x1280")], PAPER_DIR, why)
    assert at is not None and all(v is not None for v in at["paper_fps"]) and not why
    small = dense_side_by_side([row(2, 1.0, "512"), row(4, 1.2, "512")], PAPER_DIR, why)
    assert small is not None and all(v is None for v in small["paper_fps"])
    assert small["x_window2"][-1] == pytest.approx(1.2)  # ours stay
    assert why == {"litv2_s retinanet": ["res 512 ≠ 800x1280 for retinanet"]}


def test_partial_rows_are_named_not_failures(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "p").create(ENV)
    run.append_rows([layer("msa", 100.0, status="partial", n_samples=3),
                     layer("hilo", 50.0, status="partial", n_samples=3)])  # fmt: skip
    rep = build_report([run.path], tmp_path / "rep")
    text = rep.path.read_text()
    assert "2 row(s) are `partial`" in text and "--resume" in text
    assert "## Failures" not in text
