"""Timing loop and statistics: correctness only, never absolute speed (shared noisy CPUs)."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import torch

from hilobench.measure import stats, timing

# ---------------------------------------------------------------- stats


def test_median_ci_exact_order_statistics():
    # n=10: P(B <= 1) = 11/1024 <= 0.025 < P(B <= 2) = 56/1024, so ranks 2 and 9.
    assert stats.median_ci(list(range(10, 0, -1))) == (2.0, 9.0)
    # n=20: P(B <= 5) = 0.0207 <= 0.025 < P(B <= 6) = 0.0577, so ranks 6 and 15.
    assert stats.median_ci(range(1, 21)) == (6.0, 15.0)
    # n=6 is the smallest n whose (min, max) reaches 95%: 1 - 2/64 = 0.969.
    assert stats.median_ci([5, 1, 4, 2, 6, 3]) == (1.0, 6.0)


def test_median_ci_tiny_n_is_range():
    assert stats.median_ci([3.0, 1.0, 2.0]) == (1.0, 3.0)
    assert stats.median_ci([7.0]) == (7.0, 7.0)
    with pytest.raises(ValueError):
        stats.median_ci([])
    with pytest.raises(ValueError):
        stats.median_ci([1.0, 2.0], conf=1.5)


def test_median_ci_contains_median_and_narrows():
    rng = np.random.default_rng(0)
    small = rng.lognormal(0.0, 0.5, size=20)
    large = rng.lognormal(0.0, 0.5, size=400)
    for x in (small, large):
        lo, hi = stats.median_ci(x)
        assert lo <= float(np.median(x)) <= hi
    width = lambda x: stats.median_ci(x)[1] - stats.median_ci(x)[0]  # noqa: E731
    assert width(large) < width(small)
    # Lower confidence, narrower interval.
    assert stats.median_ci(large, conf=0.5)[1] - stats.median_ci(large, conf=0.5)[0] < width(large)


def test_median_ci_coverage():
    rng = np.random.default_rng(1)
    true_median = math.log(2.0)  # exponential(1)
    hits = 0
    trials = 400
    for _ in range(trials):
        lo, hi = stats.median_ci(rng.exponential(1.0, size=30))
        hits += lo <= true_median <= hi
    assert hits / trials >= 0.92


def test_summarize_constant_samples():
    s = stats.summarize([0.01] * 10, items_per_call=8)
    assert s["n_samples"] == 10
    assert s["cov"] == 0.0
    assert s["noisy"] is False
    assert s["throughput_median"] == pytest.approx(800.0)
    assert s["throughput_ci_low"] == pytest.approx(800.0)
    assert s["throughput_ci_high"] == pytest.approx(800.0)
    assert s["latency_ms_p50"] == pytest.approx(10.0)
    assert s["latency_ms_p90"] == pytest.approx(10.0)
    assert s["latency_ms_iqr"] == pytest.approx(0.0)
    json.dumps(s)  # JSON-ready
    assert all(type(v) in (int, float, bool) for v in s.values())


def test_summarize_values_and_noise_flag():
    samples = [0.010, 0.011, 0.012, 0.010, 0.011, 0.013, 0.010, 0.012, 0.050, 0.090]
    s = stats.summarize(samples, items_per_call=1)
    assert s["noisy"] is True and s["cov"] > 0.10
    med = float(np.median(samples))
    assert s["throughput_median"] == pytest.approx(1.0 / med)
    assert s["throughput_ci_low"] <= s["throughput_median"] <= s["throughput_ci_high"]
    assert s["latency_ms_p50"] <= s["latency_ms_p90"]
    quiet = stats.summarize([0.0100, 0.0101, 0.0099, 0.0100, 0.0102, 0.0098], items_per_call=1)
    assert quiet["noisy"] is False
    # The threshold is a parameter.
    assert stats.summarize(samples, 1, noisy_cov=10.0)["noisy"] is False
    with pytest.raises(ValueError):
        stats.summarize([0.01, 0.0], 1)
    with pytest.raises(ValueError):
        stats.summarize([0.01], 0)


def test_ratio_summary_twice_as_fast():
    rng = np.random.default_rng(2)
    a = rng.uniform(0.01, 0.02, size=15)
    r = stats.ratio_summary(a, 2 * a)
    assert r["n"] == 15
    assert r["ratio_median"] == pytest.approx(2.0)
    assert r["ratio_ci_low"] == pytest.approx(2.0)
    assert r["ratio_ci_high"] == pytest.approx(2.0)
    assert r["frac_a_faster"] == 1.0
    # With per-round noise the median ratio stays near 2 and the CI brackets it.
    b = 2 * a * rng.uniform(0.9, 1.1, size=15)
    r = stats.ratio_summary(a, b)
    assert r["ratio_ci_low"] <= r["ratio_median"] <= r["ratio_ci_high"]
    assert r["ratio_median"] == pytest.approx(2.0, rel=0.1)
    json.dumps(r)
    with pytest.raises(ValueError):
        stats.ratio_summary([1.0, 2.0], [1.0])


def test_rank_test():
    rng = np.random.default_rng(3)
    base = rng.normal(1.0, 0.05, size=30)
    slower = rng.normal(1.2, 0.05, size=30)
    assert stats.rank_test(base, slower) < 1e-6
    # Candidate faster: no evidence that it is slower.
    assert stats.rank_test(slower, base) > 0.99
    # Same values in another order: nothing to see.
    assert stats.rank_test(base, rng.permutation(base)) > 0.4
    assert stats.rank_test([1.0] * 10, [1.0] * 10) == 1.0
    with pytest.raises(ValueError):
        stats.rank_test(base, slower, alternative="bigger")


def test_relative_change():
    assert stats.relative_change([1.0, 1.0, 1.0], [1.1, 1.1, 1.1]) == pytest.approx(0.10)
    assert stats.relative_change([2.0, 2.0], [1.0, 1.0]) == pytest.approx(-0.5)


# ---------------------------------------------------------------- timing


def test_set_threads_roundtrip():
    original = torch.get_num_threads()
    try:
        assert timing.set_threads(1) == 1
        assert torch.get_num_threads() == 1
        assert timing.set_threads(None) == timing.default_threads() >= 1
        with pytest.raises(ValueError):
            timing.set_threads(0)
    finally:
        torch.set_num_threads(original)


def test_time_fn_sleep_samples_and_budget():
    t = timing.time_fn(lambda: time.sleep(0.002), budget_s=0.3, min_samples=9)
    assert len(t.samples_s) >= 9
    assert t.calls_per_sample == 1
    assert t.warmup_calls >= 3
    assert all(s >= 0.0019 for s in t.samples_s)  # a sleep never returns early
    assert t.total_s >= 0.3  # sampling runs until the budget is spent ...
    assert t.total_s < 0.3 + 2.0  # ... and not far beyond it (generous: noisy machine)
    assert 0 < t.warmup_s < t.total_s


def test_time_fn_min_samples_beats_budget_and_max_caps():
    t = timing.time_fn(lambda: None, budget_s=0.0, min_samples=12, min_warmup=2)
    assert len(t.samples_s) == 12
    assert t.warmup_calls == 2
    t = timing.time_fn(lambda: None, budget_s=10.0, min_samples=3, max_samples=20)
    assert len(t.samples_s) == 20
    with pytest.raises(ValueError):
        timing.time_fn(lambda: None, min_samples=5, max_samples=4)


def test_time_fn_batches_short_calls():
    t = timing.time_fn(lambda: time.sleep(0.002), budget_s=0.3, min_samples=5, min_sample_s=0.02)
    assert t.calls_per_sample > 1
    # Samples are per call, not per batch of calls.
    assert float(np.median(t.samples_s)) < 0.02


def test_time_fn_warms_up_until_steady():
    calls = []

    def fn():
        calls.append(None)
        time.sleep(0.02 if len(calls) <= 5 else 0.001)

    t = timing.time_fn(fn, budget_s=0.5, min_samples=9, min_warmup=1, warmup_max_s=3.0)
    assert t.warmup_steady
    assert t.warmup_calls > 5  # the slow start stayed in the warm-up
    assert float(np.median(t.samples_s)) < 0.01


def test_time_interleaved_rotates_order():
    log: list[str] = []
    fns = {name: (lambda n=name: log.append(n)) for name in ("a", "b", "c")}
    res = timing.time_interleaved(fns, budget_s=0.0, min_rounds=3, min_warmup=1)
    warm = sum(r.warmup_calls for r in res.values())
    assert log[:warm] == ["a", "b", "c"]
    assert log[warm:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert res["a"].order == [0, 2, 1]
    assert all(len(r.samples_s) == 3 and r.calls_per_sample == 1 for r in res.values())
    with pytest.raises(ValueError):
        timing.time_interleaved({})


def test_time_interleaved_paired_ratio():
    fns = {"fast": lambda: time.sleep(0.001), "slow": lambda: time.sleep(0.004)}
    res = timing.time_interleaved(fns, budget_s=0.4, min_rounds=9)
    n = len(res["fast"].samples_s)
    assert n >= 9 and len(res["slow"].samples_s) == n
    r = stats.ratio_summary(res["fast"].samples_s, res["slow"].samples_s)
    assert r["ratio_median"] > 1.5  # sleep(4 ms) vs sleep(1 ms): ordering only, not speed
