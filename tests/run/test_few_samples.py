"""Rows with too few samples for an interval (status ``few-samples``) are measured results,
uncertain ones: never ``ok``, never failures, wherever rows are counted or judged."""

from __future__ import annotations

from typing import Any

from hilobench.core.case import Case
from hilobench.core.row import MEASURED, STATUSES, is_measured
from hilobench.gate.driver import PairOutcome, finish_row
from hilobench.gate.judge import judge_case
from hilobench.gate.policy import SpeedPolicy
from hilobench.report.rows import ok_rows

CASE = Case("layer", "hilo", batch=1, budget=0.05, options=(("dim", 32), ("heads", 2)))


def _row(status: str, samples: list[float]) -> dict[str, Any]:
    return {"status": status, "message": "", "samples_s": samples, "params": 1}


def test_few_samples_is_a_status_of_its_own() -> None:
    assert "few-samples" in STATUSES and MEASURED == ("ok", "few-samples")
    assert is_measured({"status": "few-samples"}) and not is_measured({"status": "OOM"})
    assert is_measured({}, "ok") and not is_measured({})


def test_gate_rows_with_few_samples_say_so() -> None:
    row = finish_row(
        _row("ok", [0.01, 0.011, 0.012]), CASE, PairOutcome(blocks=3),
        case_id="hilo", round_group="g", env_id="e",
    )  # fmt: skip
    assert row["status"] == "few-samples" and row["n_samples"] == 3
    assert "3 sample(s) in 3 block(s)" == row["message"]
    row = finish_row(
        _row("ok", [0.01] * 9), CASE, PairOutcome(blocks=9),
        case_id="hilo", round_group="g", env_id="e",
    )  # fmt: skip
    assert row["status"] == "ok"


def test_compare_judges_few_samples_as_measured_not_failed() -> None:
    base = _row("ok", [0.010] * 12)
    cand = _row("few-samples", [0.010, 0.011])
    res = judge_case("k", base, cand, SpeedPolicy())
    # not a regression for its status, and not judged on 2 samples either
    assert res.verdict == "unjudged", res
    assert any("candidate few-samples" in n for n in res.notes)


def test_reports_keep_few_sample_rows() -> None:
    rows = [
        {"status": "few-samples", "throughput_median": 5.0},
        {"status": "ok", "throughput_median": 6.0},
        {"status": "OOM", "throughput_median": None},
    ]
    assert [r["throughput_median"] for r in ok_rows(rows)] == [5.0, 6.0]
