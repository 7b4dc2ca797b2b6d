"""Reports: files exist, plots hold the expected series, paper side-by-side uses ratios to the
reference row, and runs from several machines merge into one table."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from hilobench.cli.app import main
from hilobench.core.errors import ConfigError
from hilobench.report.markdown import build_report
from hilobench.report.merge import merge_runs
from hilobench.report.run_rows import load_runs
from hilobench.store.writer import RunDir

PAPER = Path(__file__).resolve().parents[2] / "results" / "paper"


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real, tiny sweep: two attentions at two resolutions, interleaved per resolution."""
    tmp = tmp_path_factory.mktemp("sweep")
    suite = tmp / "sweep.yaml"
    suite.write_text(
        "name: sweep\ndefaults: {batch: 2, dim: 64, heads: 4, budget: 0.2, impl: reference}\n"
        "cases:\n  - layer: [hilo, msa]\n    res: [224, 320]\n"
        "compare: {members: all, reference: msa}\n"
    )
    out = tmp / "run"
    with pytest.raises(SystemExit) as exc:
        main(["suite", "run", str(suite), "--no-isolate", "--out", str(out), "--format", "csv"])
    assert exc.value.code in (0, None)
    return out


def test_report_files_and_series(sweep_run: Path, tmp_path: Path) -> None:
    rep = build_report([sweep_run], tmp_path / "rep", paper_dir=PAPER)
    text = rep.path.read_text()
    for fig in ("throughput_vs_resolution.png", "memory_vs_resolution.png", "macs_vs_tokens.png"):
        assert (tmp_path / "rep" / fig).stat().st_size > 1000, fig
        assert f"({fig})" in text
    tp = rep.figures["throughput_vs_resolution.png"]
    assert set(tp) == {"hilo", "msa"}
    assert all(x == [224, 320] and all(v > 0 for v in y) for x, y in tp.values())
    rows = {(r["name"], r["res"]): r for r in json.loads(_jsonl_as_list(sweep_run))}
    assert tp["hilo"][1] == [
        rows["hilo", "224"]["throughput_median"],
        rows["hilo", "320"]["throughput_median"],
    ]
    mem = rep.figures["memory_vs_resolution.png"]
    assert mem["msa"][1][0] == rows["msa", "224"]["peak_mem_bytes"] / 2**20
    macs = rep.figures["macs_vs_tokens.png"]
    assert macs["msa"][0] == [196, 400]
    assert macs["msa"][1] == [float(rows["msa", "224"]["macs"]), float(rows["msa", "320"]["macs"])]
    # a dim-64 layer at batch 2 is not the paper's setting: no paper figures beside it
    assert "paper_layers_reference.png" not in rep.figures
    table = rep.tables["paper_layers"]
    assert "paper_x_msa" not in table and set(table["attention"]) == {"hilo", "msa"}
    assert "left out for 2 row(s)" in text and "dim 64 ≠ 768" in text and "batch 2 ≠ 64" in text
    # the same rows at the paper's setting (dim 768, 12 heads, batch 64) get them
    at_paper = tmp_path / "at_paper"
    at_paper.mkdir()
    (at_paper / "env.json").write_text((sweep_run / "env.json").read_text())
    edited = []
    for line in (sweep_run / "rows.jsonl").read_text().splitlines():
        r = json.loads(line)
        r.update(batch=64, options={"dim": 768, "heads": 12})
        edited.append(json.dumps(r) + "\n")
    (at_paper / "rows.jsonl").write_text("".join(edited))
    rep = build_report([at_paper], tmp_path / "rep2", paper_dir=PAPER)
    assert "left out" not in rep.path.read_text()
    # side by side: ratios to MSA, ours from the interleaved rounds, the paper's 1029 / 505
    paper = rep.figures["paper_layers_reference.png"]
    labels, ours = paper["ours"]
    assert set(labels) == {"hilo", "msa"}
    assert ours[labels.index("msa")] == 1.0
    assert ours[labels.index("hilo")] == rows["hilo", "224"]["ratio_to_ref"]
    assert paper["paper"][1][labels.index("hilo")] == pytest.approx(1029 / 505)
    assert "ratios to a reference row" in text
    assert "compare group" in text
    assert (tmp_path / "rep2" / "paper_layers_reference.png").stat().st_size > 1000


def _jsonl_as_list(run: Path) -> str:
    return "[" + ",".join((run / "rows.jsonl").read_text().split("\n")[:-1]) + "]"


def _fake_run(path: Path, env: dict[str, Any], rows: list[dict[str, Any]]) -> Path:
    run = RunDir(path).create(env)
    for r in rows:
        run.append(r)
    return path


def _model_row(name: str, tp: float, mode: str = "infer", res: str = "224") -> dict[str, Any]:
    return {
        "kind": "model",
        "name": name,
        "attention": "",
        "impl": "reference",
        "mode": mode,
        "res": res,
        "tokens": "",
        "batch": 64,
        "dtype": "float32",
        "device": "cuda",
        "params": 25e6,
        "macs": 4e9,
        "status": "ok",
        "throughput_median": tp,
        "peak_mem_bytes": 2**30,
        "case_key": f"{name}-{mode}",
        "env_id": "e",
    }


def test_model_side_by_side_ratios_to_resnet50(tmp_path: Path) -> None:
    run = _fake_run(
        tmp_path / "models",
        {"env_id": "e", "gpu_name": "Some GPU"},
        [
            _model_row("resnet50", 100.0),
            _model_row("litv2_s", 115.0),
            _model_row("litv2_s", 40.0, mode="train"),
            {**_model_row("swin_b_384", 0.0, res="384"), "status": "OOM", "message": "oom"},
        ],
    )
    rep = build_report([run], tmp_path / "rep", paper_dir=PAPER)
    labels, ours = rep.figures["paper_models.png"]["ours"]
    assert labels == ["ResNet-50", "LITv2-S"]
    assert ours == [1.0, pytest.approx(1.15)]
    assert rep.figures["paper_models.png"]["paper"][1][1] == pytest.approx(1471 / 1279)
    table = rep.tables["paper_models"].by("model")
    assert table["litv2_s"]["train_mem_gib"] == pytest.approx(1.0)
    assert "ResNet-50" in rep.path.read_text() and "Failures" in rep.path.read_text()


def test_merge_runs_one_column_per_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _fake_run(
        tmp_path / "a",
        {"env_id": "a1", "gpu_name": "A100"},
        [_model_row("resnet50", 1424.0), _model_row("litv2_s", 1874.0)],
    )
    b = _fake_run(
        tmp_path / "b",
        {"env_id": "b1", "gpu_name": "V100"},
        [_model_row("resnet50", 1123.0), {**_model_row("litv2_s", 0.0), "status": "OOM"}],
    )
    merged = merge_runs(load_runs([a, b]))
    assert list(merged.columns[-2:]) == ["A100", "V100"]
    df = merged.by("name")
    assert df["resnet50"]["A100"] == 1424.0 and df["resnet50"]["V100"] == 1123.0
    assert df["litv2_s"]["V100"] == "OOM"

    out = tmp_path / "merged.csv"
    code, _, _ = run_cli(["merge", str(a), str(b), "--out", str(out)], capsys)
    assert code == 0 and "A100,V100" in out.read_text().splitlines()[0]
    code, stdout, _ = run_cli(["merge", str(a), str(b)], capsys)
    assert code == 0 and "| A100 | V100 |" in stdout
    code, _, stderr = run_cli(["merge", str(a), "--metric", "nope"], capsys)
    assert code == 2 and "'nope'" in stderr

    code, _, stderr = run_cli(["report", str(a), str(b), "--out", str(tmp_path / "r")], capsys)
    assert code == 0
    assert "## Across machines" in (tmp_path / "r" / "report.md").read_text()


def test_report_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, stderr = run_cli(
        ["report", str(tmp_path / "none"), "--out", str(tmp_path / "r")], capsys
    )
    assert code == 2 and "no results" in stderr and not (tmp_path / "r").exists()


def test_missing_matplotlib_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _fake_run(tmp_path / "m", {"env_id": "e"}, [_model_row("resnet50", 1.0)])
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ConfigError, match="matplotlib"):
        build_report([run], tmp_path / "rep")
    assert not (tmp_path / "rep").exists()
