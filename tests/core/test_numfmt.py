"""Numbers as people read them (hilobench.core.numfmt): significant digits by the interval's width,
counts that keep their digits however small, intervals that say when they are only a range,
and empty cells for what is absent."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hilobench.core import numfmt as nf
from hilobench.core.row import CI_MIN_SAMPLES
from hilobench.measure.stats import ci_min_samples

finite = st.floats(min_value=1e-6, max_value=1e14, allow_nan=False, allow_infinity=False)


def significant(text: str) -> int:
    """Significant digits written in ``text`` (a positional number)."""
    digits = text.lstrip("-").replace(".", "").lstrip("0")
    return len(digits) if "." in text else len(digits.rstrip("0") or "0")


@given(x=finite, digits=st.integers(1, 6), negative=st.booleans())
def test_sig_rounds_to_the_digits_asked(x: float, digits: int, negative: bool) -> None:
    x = -x if negative else x
    text = nf.sig(x, digits)
    assert "e" not in text and "…" not in text
    value = float(text)
    # within half a unit of the last digit shown (of the rounded magnitude, as 9.99 → 10.0)
    unit = 10 ** (math.floor(math.log10(max(abs(value), abs(x)))) - digits + 1)
    assert abs(value - x) <= unit / 2 * (1 + 1e-9)
    if "." in text:  # decimals written: exactly the digits asked for
        assert significant(text) == digits


@given(x=finite)
def test_whole_keeps_every_integer_digit(x: float) -> None:
    text = nf.sig(x, 4, whole=True)
    assert len(text.split(".")[0].lstrip("-")) == len(str(int(round(x))))
    assert "e" not in text


def test_sig_examples() -> None:
    assert nf.sig(1234.5, 2) == "1200"
    assert nf.sig(9.996, 3) == "10.0"
    assert nf.sig(0.0001234, 3) == "0.000123"
    assert nf.sig(12345.6, 4, whole=True) == "12346"
    assert nf.sig(0, 3) == "0"
    assert nf.sig(1.5e-9, 2) == "1.5e-09"
    with pytest.raises(ValueError):
        nf.sig(1.0, 0)


def test_tiny_counts_keep_their_information() -> None:
    assert nf.count(123_456, 1e9) == "0.0001235"  # GMACs of a tiny layer, never 0.000
    assert nf.count(4_200_000_000, 1e9) == "4.200"
    assert nf.count(123_456_789, nf.MIB) == "117.7"
    assert nf.count(None) == nf.count(float("nan")) == nf.EMPTY


@given(
    v=st.floats(1e-3, 1e6),
    rel=st.floats(1e-6, 0.5),
)
def test_digits_follow_the_interval(v: float, rel: float) -> None:
    low, high = v * (1 - rel), v * (1 + rel)
    d = nf.digits_for(v, low, high)
    assert nf.MIN_DIGITS <= d <= nf.MAX_DIGITS
    # a narrower interval never shows fewer digits
    assert nf.digits_for(v, v * (1 - rel / 10), v * (1 + rel / 10)) >= d


def test_measured_digits_as_compare_does() -> None:
    assert nf.measured(1234.5, 1180, 1290) == "1230"  # ±55: the tens are uncertain
    assert nf.measured(1234.5, 1234.0, 1235.0) == "1234"  # tight: 4 digits, no more
    assert nf.measured(0.1234, 0.12, 0.127) == "0.123"  # a slow model is not "0.1 img/s"
    assert nf.measured(0.1234) == "0.123"  # no interval: 3 digits
    assert nf.measured(9.5791, 9.5791, 9.5791, n=1) == "9.58"  # one sample: none either
    assert nf.measured(None) == ""


@given(
    a=st.floats(1e-3, 1e5),
    rel=st.floats(1e-4, 1.0),
    n=st.integers(CI_MIN_SAMPLES, 10_000),
)
def test_interval_shows_both_ends_apart(a: float, rel: float, n: int) -> None:
    b = a * (1 + rel)
    text = nf.interval(a, b, n)
    low, high = text.split("–")
    assert float(low) < float(high)  # never printed as the same number, never cut
    # each end within half a unit of its last digit, a unit at most a third of the width
    assert (
        abs(float(low) - a) <= (b - a) / 6 + 1e-12 and abs(float(high) - b) <= (b - a) / 6 + 1e-12
    )


def test_interval_says_when_it_is_only_a_range() -> None:
    assert CI_MIN_SAMPLES == ci_min_samples(0.95) == 6
    assert nf.interval(0.977, 1.4, 22) == "1.0–1.4"
    assert nf.interval(0.977, 1.4, 3) == "n=3 · 1.0–1.4"
    assert nf.interval(5.0, 5.0, 1) == nf.NO_INTERVAL
    assert nf.interval(None, 1.0, 9) == ""
    assert nf.interval_header([22, 30]) == "95% CI"
    assert nf.interval_header([22, 3]) == "interval"
    assert nf.interval_header([None]) == "95% CI"  # reports' ratios carry no count


def test_percent_and_status() -> None:
    assert nf.percent(0.0123) == "1.2%" and nf.percent(0.5) == "50%" and nf.percent(None) == ""
    assert nf.status({"status": "ok", "n_samples": 22}) == "ok"
    assert nf.status({"status": "ok", "n_samples": 22, "noisy": True}) == "ok (noisy)"
    # a row stored as ok before few-samples existed reads as what it is
    assert nf.status({"status": "ok", "n_samples": 2}) == "few-samples"
    assert nf.status({"status": "OOM", "n_samples": 2}) == "OOM"


def test_few_samples_message() -> None:
    assert nf.few_samples_message(1, 8.6, 1, 1.0) == (
        "one call took 8.6 s > --budget 1 s: 1 sample; raise --budget for an interval"
    )
    msg = nf.few_samples_message(4, 0.05, 3, 1.0)
    assert msg.startswith("4 samples") and "raise --budget" in msg


def test_plain_cells() -> None:
    assert nf.plain(0.123456) == "0.1235" and nf.plain(123456.7) == "123457"
    assert nf.plain(3) == "3" and nf.plain(True) == "True" and nf.plain("hilo") == "hilo"
    assert nf.plain(None) == nf.plain(float("nan")) == nf.EMPTY
    assert nf.integer(64) == "64" and nf.integer(None) == ""


def test_a_figure_without_interval_keeps_its_integer_digits() -> None:
    assert nf.measured(1004.9) == "1005" and nf.measured(1004.9, n=1) == "1005"
    assert nf.measured(1004.9, 900, 1100) == "1000"  # ±100: the units are noise
