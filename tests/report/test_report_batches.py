"""``report`` across batch sizes and kinds: a latency-vs-throughput line per subject measured
at several batches, layers and backbones on separate figures, and the paper columns named for
people in report.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hilobench.report.markdown import build_report
from hilobench.report.series import series_latency_throughput
from hilobench.store.writer import RunDir

pytest.importorskip("matplotlib")


def row(kind: str, name: str, batch: int, res: str = "224", **extra: Any) -> dict[str, Any]:
    tp = 100.0 * batch / (batch + 4)  # throughput saturates as the batch grows
    return {
        "kind": kind, "name": name, "attention": name if kind == "layer" else "",
        "impl": "reference", "mode": "infer", "res": res, "tokens": "14x14" if kind == "layer"
        else "", "batch": batch, "dtype": "float32", "device": "cpu", "status": "ok",
        "throughput_median": tp, "latency_ms_p50": 1000.0 * batch / tp, "macs": 5e8,
        "params": 2e6, "peak_mem_bytes": 2**20 * batch, "case_key": f"{kind}{name}{batch}{res}",
        "env_id": "e", **extra,
    }  # fmt: skip


def test_latency_throughput_series() -> None:
    rows = [row("layer", "hilo", b) for b in (8, 1, 64)] + [row("layer", "msa", 64)]
    lt = series_latency_throughput(rows)
    assert set(lt) == {"hilo"}  # msa has one batch only: no line
    x, y, batches = lt["hilo"]
    assert batches == [1, 8, 64]
    assert x == [row("layer", "hilo", b)["throughput_median"] for b in batches]
    assert y == [row("layer", "hilo", b)["latency_ms_p50"] for b in batches]
    assert x == sorted(x) and y == sorted(y)  # more throughput, more latency per batch


def test_report_keeps_kinds_apart_and_names_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hilobench.report.paper as paper

    monkeypatch.setattr(paper, "_display", str)  # the model registry (torch) is not the point
    rows = [row("layer", n, b) for n in ("hilo", "msa") for b in (1, 8, 64)]  # 64: the paper's
    rows += [row("model", "litv2_s", b) for b in (1, 8)]
    rows += [row("layer", "msa", 8, res="320", tokens="20x20")]
    run = RunDir(tmp_path / "run").create({"env_id": "e"})
    run.append_rows(rows)
    rep = build_report([run.path], tmp_path / "rep")
    text = rep.path.read_text()
    for fig in ("latency_vs_throughput_layers.png", "latency_vs_throughput_backbones.png"):
        assert (tmp_path / "rep" / fig).stat().st_size > 1000 and f"({fig})" in text
    assert set(rep.figures["latency_vs_throughput_layers.png"]) == {"hilo @224", "msa @224"}
    assert set(rep.figures["latency_vs_throughput_backbones.png"]) == {"litv2_s"}
    for name, series in rep.figures.items():  # no figure mixes layers and backbones
        assert not ({"hilo", "msa"} & {s.split()[0] for s in series} and "litv2_s" in series), name
    # the side-by-side with the paper: headers for people, the interval in the ratio's cell
    assert "× MSA (95% CI)" in text and "paper: × MSA" in text
    assert "x_msa_ci_low" not in text and "paper_x_msa" not in text
    assert "x_msa_ci_low" in rep.tables["paper_layers"].columns  # data keeps field names
