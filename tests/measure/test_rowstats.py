"""The statistics views show are derived from a row's samples in one place: they equal
``stats.summarize`` on those samples, a row without samples shows what it stored, and a row
whose stored summary was tampered with shows, in every view, the numbers of its samples."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import pytest

from hilobench.cli.rowtable import render_text, rich_table
from hilobench.core import numfmt as nf
from hilobench.core.columns import cells, default_columns, rows_markdown
from hilobench.core.terminal import render_to_text
from hilobench.measure import rowstats, stats
from hilobench.report.merge import merge_runs
from hilobench.report.rows import ok_rows
from hilobench.report.run_rows import ReportedRun
from hilobench.report.runtimes import runtime_table
from hilobench.report.series import series_vs_res
from hilobench.report.tables import group_cells, markdown_table, results_table
from hilobench.report.trend import bencher_metric_format, github_action_benchmark
from hilobench.run.progress import row_line
from hilobench.store.writer import RunDir, table_frame, to_markdown

#: Per-layer times of 12 samples: median 10 ms, a spread that the summary must reflect.
SAMPLES = [0.0100, 0.0098, 0.0103, 0.0101, 0.0097, 0.0110, 0.0099, 0.0102, 0.0100, 0.0096,
           0.0105, 0.0100]  # fmt: skip
BATCH = 8


def measured_row(**extra: Any) -> dict[str, Any]:
    """A layer row as a run writes it: samples, batch and the summary stored beside them."""
    row: dict[str, Any] = {
        "kind": "layer", "name": "hilo", "attention": "hilo", "impl": "reference",
        "mode": "infer", "res": "224", "tokens": "14x14", "batch": BATCH, "dtype": "float32",
        "device": "cpu", "backend": "eager", "case_key": "k-hilo", "status": "ok",
        "message": "", "samples_s": list(SAMPLES), "calls_per_sample": 2,
        **stats.summarize(SAMPLES, BATCH),
    }  # fmt: skip
    row.update(extra)
    return row


#: Stored summary columns that disagree with the samples (and with each other).
TAMPERED = {
    "throughput_median": 123.0, "throughput_ci_low": 100.0, "throughput_ci_high": 150.0,
    "latency_ms_p50": 77.0, "latency_ms_p90": 99.0, "latency_ms_iqr": 5.0, "cov": 0.5,
    "noisy": True, "n_samples": 3,
}  # fmt: skip


def tampered_row(**extra: Any) -> dict[str, Any]:
    return measured_row(**TAMPERED, **extra)


def stored(row: dict[str, Any]) -> dict[str, Any]:
    """The columns a row stored, as a view that trusted them would read them."""
    return {k: row[k] for k in rowstats.STATS if k in row}


def test_derived_statistics_equal_summarize_on_the_same_samples() -> None:
    for samples in (SAMPLES, SAMPLES[:3], SAMPLES[:1], [0.5, 0.7, 0.6, 2.0, 0.55, 0.61, 0.58]):
        row = measured_row(samples_s=list(samples), **TAMPERED)
        assert rowstats.derive(row) == stats.summarize(samples, BATCH)
    assert rowstats.summary(SAMPLES, 4) == stats.summarize(SAMPLES, 4)


def test_a_row_without_samples_shows_its_stored_columns() -> None:
    old = {k: v for k, v in tampered_row().items() if k != "samples_s"}
    assert rowstats.derive(old) == TAMPERED
    assert rowstats.shown(old) == old
    assert rowstats.field(old, "throughput_median") == 123.0
    # samples that are no times, or no batch to divide: the stored columns too
    for bad in ({"samples_s": [0.01, -1.0]}, {"samples_s": ["x"]}, {"batch": None}):
        assert rowstats.derive(tampered_row(**bad)) == TAMPERED
    # a max-batch row stores no statistics: none appear
    assert rowstats.derive({"kind": "model", "max_batch": 64, "batch": 1}) == {}


def test_old_rows_read_as_before_in_the_table() -> None:
    """A row written before samples were kept: its cells are the ones its columns give."""
    old = {k: v for k, v in tampered_row().items() if k != "samples_s"}
    cols = ["img_s", "n", "ci", "p50", "p90", "cov", "status"]
    assert cells([old], cols, rowstats.derive) == cells([old], cols, stored)


def test_tampered_summary_columns_are_not_what_the_core_table_shows() -> None:
    row, good = tampered_row(), measured_row()
    cols = ["img_s", "n", "ci", "p50", "p90", "cov", "status"]
    heads, body, _ = cells([row], cols, rowstats.derive)
    assert body == cells([good], cols, rowstats.derive)[1]
    assert body != cells([row], cols, stored)[1]
    s = stats.summarize(SAMPLES, BATCH)
    img_s, n, ci, _p50, _p90, cov, status = body[0]
    assert n == "12" and status == "ok"  # not n=3, not noisy
    assert ci == nf.interval(s["throughput_ci_low"], s["throughput_ci_high"], 12)
    assert img_s == nf.measured(s["throughput_median"], s["throughput_ci_low"],
                                s["throughput_ci_high"], n=12)  # fmt: skip
    assert cov == nf.percent(s["cov"])
    assert heads[2] == "95% CI"  # 12 samples make one; the stored 3 would not
    assert "img_s" in default_columns([row], rowstats.derive)[0]
    assert "123" not in rows_markdown([row], rowstats.derive)


def test_noisy_samples_read_noisy_whatever_the_row_stored() -> None:
    noisy = [0.01, 0.02, 0.01, 0.03, 0.01, 0.015, 0.01, 0.025]
    row = measured_row(samples_s=noisy, noisy=False, cov=0.01)
    _, body, _ = cells([row], ["status", "cov"], rowstats.derive)
    assert body[0][0] == "ok (noisy)"
    assert body[0][1] == nf.percent(stats.summarize(noisy, BATCH)["cov"])
    # and a few-samples row stored as ok reads few-samples from its samples' count
    few = measured_row(samples_s=SAMPLES[:3], n_samples=12)
    assert cells([few], ["status"], rowstats.derive)[1][0][0] == "few-samples"


def _text_of_views(row: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    """What each view writes for ``row`` (and an eager twin for the runtime table)."""
    run = RunDir(tmp_path / "run").create({})
    run.append(row)
    run.write_tables()
    twin = dict(row, backend="onnxruntime", case_key="k-ort")
    return {
        "terminal": render_to_text(rich_table([row], "t", ["img_s", "n", "p50", "status"]), 200),
        "md": render_text([row], "md", ["img_s", "n", "ci", "p50"]),
        "csv": render_text([row], "csv"),
        "json": render_text([row], "json"),
        "results.md": (run.path / "results.md").read_text(),
        "results.csv": (run.path / "results.csv").read_text(),
        "report": markdown_table(results_table([row])),
        "runtimes": "\n".join(runtime_table([row, twin])),
        "progress": row_line(row, 1, 1),
    }


def test_every_view_shows_the_numbers_of_the_samples(tmp_path: Path) -> None:
    good = _text_of_views(measured_row(), tmp_path / "good")
    bad = _text_of_views(tampered_row(), tmp_path / "bad")
    assert bad == good
    assert "123" not in bad["terminal"] and "noisy" not in bad["terminal"]
    s = stats.summarize(SAMPLES, BATCH)
    rec = next(csv.DictReader(io.StringIO(bad["results.csv"])))
    assert float(rec["throughput_median"]) == s["throughput_median"]
    assert int(rec["n_samples"]) == 12


def test_report_and_export_views_derive_too() -> None:
    row, s = tampered_row(), stats.summarize(SAMPLES, BATCH)
    assert ok_rows([row])[0]["throughput_median"] == s["throughput_median"]
    assert series_vs_res([row])["hilo"][1] == [s["throughput_median"]]
    entry = github_action_benchmark([row])[0]
    assert entry["value"] == round(s["throughput_median"], 4)
    assert "median of 12 samples" in entry["extra"]
    (tp,) = (m["throughput"] for m in bencher_metric_format([row]).values())
    assert (tp["value"], tp["lower_value"]) == (s["throughput_median"], s["throughput_ci_low"])
    merged = merge_runs([ReportedRun(Path("r"), {}, [row], label="m")])
    assert list(merged["m"]) == [s["throughput_median"]]
    member = tampered_row(group="g", ref="hilo", ratio_to_ref=1.0, ratio_n=12)
    made = group_cells([member])
    assert made is not None and made[2][0][-1] == "ok"  # not "ok (noisy)" as stored


def test_gate_judge_notes_the_derived_sample_count() -> None:
    from hilobench.gate.judge import judge_case
    from hilobench.gate.policy import SpeedPolicy

    few = measured_row(samples_s=SAMPLES[:4], status="few-samples", n_samples=40)
    res = judge_case("k-hilo", few, few, SpeedPolicy(), speed=False)
    assert "base few-samples: 4 sample(s)" in res.notes


def test_a_fresh_measurement_stores_its_summary_and_says_when_it_is_thin() -> None:
    cols = rowstats.measured_columns(SAMPLES, BATCH, 0.02, 2, 1.0)
    assert cols == stats.summarize(SAMPLES, BATCH)
    few = rowstats.measured_columns(SAMPLES[:2], BATCH, 0.5, 1, 1.0)
    assert few["status"] == "few-samples" and few["n_samples"] == 2
    assert few["message"] == nf.few_samples_message(2, 0.5, 1, 1.0)


NAN = float("nan")


@pytest.mark.parametrize("missing", [None, NAN])
def test_none_and_nan_are_empty_cells_in_every_view(missing: Any, tmp_path: Path) -> None:
    """A row without samples whose figures are None or NaN: every view writes empty cells."""
    row = {k: v for k, v in measured_row().items() if k != "samples_s"}
    for k in ("throughput_median", "throughput_ci_low", "throughput_ci_high", "latency_ms_p50",
              "cov", "n_samples", "peak_mem_bytes", "roofline"):  # fmt: skip
        row[k] = missing
    cols = ["img_s", "n", "ci", "p50", "cov", "mem", "roofline"]
    assert cells([row], cols, rowstats.derive)[1] == [[""] * len(cols)]
    assert "nan" not in rows_markdown([row], rowstats.derive, cols).lower()
    assert "nan" not in to_markdown(table_frame([row])).lower().replace("name", "")
    assert "nan" not in markdown_table(results_table([row])).lower().replace("name", "")
    twin = dict(row, backend="onnxruntime", case_key="k-ort")
    speeds = runtime_table([row, twin])[-1].split(" | ")[4:]
    # None: no speed, so the cells say the status; NaN: no figure, so empty (never "nan")
    assert speeds == (["ok", "ok", " |"] if missing is None else ["", "", " |"])
    from hilobench.core.claim_terms import CaseVerdict
    from hilobench.gate.comment import case_cells
    from hilobench.gate.speed import SpeedResult
    from hilobench.gate.verdict import CaseResult

    speed = SpeedResult(CaseVerdict.PASS, change=missing, p_value=missing, n_base=9, n_cand=9,
                        base_median_s=missing, cand_median_s=missing)  # fmt: skip
    gate = case_cells(CaseResult("k", "hilo", CaseVerdict.PASS, speed=speed))
    assert gate[2:5] == ["", "", ""] and gate[6] == ""  # base ms, cand ms, change, p
    assert nf.fixed(missing) == nf.fixed_range(missing, 1.0) == nf.short(missing) == ""
    assert nf.change(missing) == nf.p_value(missing) == ""
    assert math.isnan(NAN)  # the NaN case really is one


def test_the_added_formatters() -> None:
    assert nf.fixed(0.916) == "0.92" and nf.fixed(1.0, 0) == "1"
    assert nf.fixed_range(1.234, 1.5) == "1.23–1.50"
    assert nf.short(12345.6) == "1.235e+04" and nf.short(1612.34) == "1612"
    assert nf.change(0.0321) == "+3.2%" and nf.change(-0.0321, whole=True) == "-3%"
    assert nf.p_value(0.01234) == "0.012" and nf.p_value(1e-5) == "<0.001"
    assert nf.share(0.1) == "10%" and nf.share(0.125, 1) == "12.5%" and nf.share(NAN) == ""
