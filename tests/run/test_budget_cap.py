"""``--budget`` is a cap: slow calls give fewer samples and a wider interval, never an overrun."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hilobench.core.case import Case
from hilobench.core.row import is_measured
from hilobench.measure import capability, timing
from hilobench.run import engine as bench

CliRunner = Callable[[list[str]], tuple[int, str, str]]

SLOW_CALL_S = 0.15


def test_strict_budget_beats_min_samples() -> None:
    t0 = time.perf_counter()
    t = timing.time_fn(lambda: time.sleep(SLOW_CALL_S), budget_s=0.5, min_samples=9,
                       min_warmup=3, strict_budget=True)  # fmt: skip
    wall = time.perf_counter() - t0
    assert 1 <= len(t.samples_s) < 9 and t.capped
    assert t.warmup_calls < 3  # the warm-up cap beat min_warmup too
    assert wall < 0.5 + 2 * SLOW_CALL_S  # at most the call that crossed the cap


def test_strict_budget_zero_still_measures_once() -> None:
    t = timing.time_fn(lambda: time.sleep(0.01), budget_s=0.0, strict_budget=True)
    assert len(t.samples_s) == 1 and t.warmup_calls == 1 and t.capped


def test_no_warm_up_means_one_call_per_sample() -> None:
    # with no call time to size samples by, a sample is one call (not a million)
    t = timing.time_fn(lambda: None, budget_s=0.0, min_warmup=0, min_sample_s=0.02,
                       strict_budget=True)  # fmt: skip
    assert t.warmup_calls == 0 and t.calls_per_sample == 1 and len(t.samples_s) == 1
    res = timing.time_interleaved({"a": lambda: None}, budget_s=0.0, min_warmup=0,
                                  min_sample_s=0.02, strict_budget=True)  # fmt: skip
    assert res["a"].calls_per_sample == 1


def test_loose_budget_keeps_min_samples() -> None:
    t = timing.time_fn(lambda: None, budget_s=0.0, min_samples=5, strict_budget=False)
    assert len(t.samples_s) == 5 and not t.capped


def test_interleaved_strict_budget_caps_rounds() -> None:
    fns = {"a": lambda: time.sleep(0.05), "b": lambda: time.sleep(0.05)}
    t0 = time.perf_counter()
    res = timing.time_interleaved(fns, budget_s=0.3, min_rounds=9, strict_budget=True)
    assert time.perf_counter() - t0 < 0.3 + 0.25
    n = len(res["a"].samples_s)
    assert 1 <= n < 9 and len(res["b"].samples_s) == n and res["a"].capped


def _slow_layer_case(budget: float) -> Case:
    opts = (("dim", 32), ("heads", 2), ("tokens", "7x7"))
    return Case("layer", "msa", batch=1, budget=budget, options=opts)


def test_case_with_slow_calls_fits_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Count trace, memory pass, warm-up and samples all come out of the budget."""
    make_step = bench.make_step

    def slow_make_step(case, subject, inputs):  # type: ignore[no-untyped-def]
        step = make_step(case, subject, inputs)

        def slow() -> object:
            time.sleep(SLOW_CALL_S)
            return step()

        return slow

    monkeypatch.setattr(bench, "make_step", slow_make_step)
    bench.warm_process()  # the process's one-off start-up is not the case's
    budget = 0.6
    t0 = time.perf_counter()
    row = bench.run_case(_slow_layer_case(budget))
    wall = time.perf_counter() - t0
    assert is_measured(row) and row["n_samples"] >= 1
    assert row["budget_capped"] is True and row["n_samples"] < 9
    assert (row["status"] == "few-samples") == (row["n_samples"] < 6), row["n_samples"]
    # budget + the build + at most one call past the cap, with room for a busy machine
    assert wall < budget + 2 * SLOW_CALL_S + 0.5


def test_memory_pass_past_the_budget_leaves_one_sample_and_no_warm_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A call longer than the whole budget: the memory pass crosses it, then exactly one timed
    call; no warm-up call on top."""
    make_step = bench.make_step

    def slow_make_step(case, subject, inputs):  # type: ignore[no-untyped-def]
        step = make_step(case, subject, inputs)
        return lambda: (time.sleep(SLOW_CALL_S), step())

    monkeypatch.setattr(bench, "make_step", slow_make_step)
    bench.warm_process()
    row = bench.run_case(_slow_layer_case(0.05))
    assert row["status"] == "few-samples" and row["n_samples"] == 1 and row["warmup_calls"] == 0
    assert row["calls_per_sample"] == 1
    # why, in one line: the call's own time against the budget
    assert re.fullmatch(
        r"one call took [\d.]+ s > --budget 0\.05 s: 1 sample; raise --budget for an interval",
        row["message"],
    ), row["message"]
    assert row["budgeted_s"] < 0.05 + 2 * SLOW_CALL_S + 0.3


def test_fast_case_is_not_capped() -> None:
    bench.warm_process()
    row = bench.run_case(_slow_layer_case(3.0))
    assert row["status"] == "ok" and row["budget_capped"] is False and row["n_samples"] >= 9


def test_emulated_dtype_warns_once_and_finishes(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capability, "native_cpu_dtype", lambda dtype, **_: dtype == "float32")
    t0 = time.perf_counter()
    code, out, err = cli(["layer", "--attn", "msa", "--dim", "32", "--heads", "2",
                          "--tokens", "7x7", "--batch", "2", "--budget", "0.3",
                          "--dtype", "bfloat16", "--no-roofline", "--out", str(tmp_path / "r"),
                          "--format", "json"])  # fmt: skip
    assert code == 0, err
    assert err.count("bfloat16 is emulated on this CPU") == 1
    (row,) = json.loads(out)
    assert row["dtype"] == "bfloat16" and is_measured(row)
    assert time.perf_counter() - t0 < 0.3 + 10  # budget plus build and start-up


def test_budget_help_says_what_it_covers(cli: CliRunner) -> None:
    code, out, _ = cli(["layer", "--help"])
    assert code == 0
    text = " ".join(out.replace("│", " ").split())
    assert "count trace" in text and "memory pass" in text and "warm-up" in text
