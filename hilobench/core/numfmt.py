"""Numbers as people read them: the one place that turns a measured or counted figure into the
text of a table cell (terminal, Markdown, CSV views, reports).

A measured figure shows as many significant digits as its interval supports, as
``torch.utils.benchmark.Compare`` does: the last digit printed is about the size of the
interval's half-width, so a noisy median prints ``1200`` and a tight one ``1234``; never fewer
than 2 digits, never more than 4. Counted figures (MACs, parameters, memory) keep 4 significant
digits and every integer digit, so a tiny layer prints ``0.0001234 GMACs``, never ``0.000``.
An interval is a "95% CI" only with enough samples for one (:data:`CI_MIN_SAMPLES`); below
that it is the min–max range, written ``n=3 · a–b``, and a single sample has none (``—``).
None and NaN are an empty cell, here and nowhere else. Pure functions importing nothing heavy
(the standard library and :mod:`hilobench.core.row`): the CLI imports this at start-up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hilobench.core.row import CI_MIN_SAMPLES, is_measured

#: The cell of a figure that is absent (None) or undefined (NaN).
EMPTY = ""
#: A one-sample interval: there is none.
NO_INTERVAL = "—"
#: Digits a measured figure may show (its interval decides within these bounds).
MIN_DIGITS, MAX_DIGITS = 2, 4
#: Digits of a counted figure and of a measured one without any interval (one sample).
COUNT_DIGITS, SINGLE_DIGITS = 4, 3
#: Magnitudes printed positionally; outside them scientific notation keeps the cell short.
_POSITIONAL = (1e-7, 1e15)

#: Bytes in a MiB, the memory unit of every table.
MIB = 2**20


def missing(v: Any) -> bool:
    """None or NaN: a cell that holds no figure."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def _magnitude(x: float) -> int:
    return math.floor(math.log10(abs(x)))


def sig(x: float, digits: int, *, whole: bool = False) -> str:
    """``x`` with ``digits`` significant digits, written positionally (``0.0001234``,
    ``1200``). ``whole``: keep every integer digit (a count of 12345 stays ``12345``)."""
    if digits < 1:
        raise ValueError(f"digits must be >= 1, got {digits}")
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return str(x)
    if not _POSITIONAL[0] <= abs(x) < _POSITIONAL[1]:
        return f"{x:.{digits - 1}e}"
    mag = _magnitude(x)
    dec = digits - 1 - mag
    if whole:
        dec = max(dec, 0)
    r = round(x, dec)
    if r != 0 and _magnitude(r) > mag and not (whole and dec == 0):
        dec -= 1  # rounding carried into a new digit (9.996 → 10.00): one decimal less
        r = round(x, dec)
    return f"{r:.{max(dec, 0)}f}"


def count(v: Any, scale: float = 1.0) -> str:
    """A counted figure (MACs, parameters, bytes) over ``scale``: 4 significant digits and
    every integer digit."""
    if missing(v):
        return EMPTY
    return sig(float(v) / scale, COUNT_DIGITS, whole=True)


def integer(v: Any) -> str:
    """A whole number (a batch, a sample count)."""
    return EMPTY if missing(v) else str(int(v))


def digits_for(value: float, low: float | None, high: float | None) -> int:
    """Significant digits ``value`` supports given its interval: one digit past the first
    that the interval's half-width reaches, within [:data:`MIN_DIGITS`, :data:`MAX_DIGITS`];
    :data:`SINGLE_DIGITS` without an interval, :data:`MAX_DIGITS` for a zero-width one."""
    if low is None or high is None or missing(low) or missing(high) or value == 0:
        return SINGLE_DIGITS
    half = abs(high - low) / 2
    if half == 0:
        return MAX_DIGITS
    d = math.floor(math.log10(abs(value) / half)) + 2
    return min(MAX_DIGITS, max(MIN_DIGITS, d))


def measured(v: Any, low: Any = None, high: Any = None, scale: float = 1.0, n: Any = None) -> str:
    """A measured figure with the digits its interval ``[low, high]`` supports (without one,
    :data:`SINGLE_DIGITS` and every integer digit). ``n``, the sample count when known: one
    sample has no interval, whatever ``low`` and ``high`` say."""
    if missing(v):
        return EMPTY
    if n is not None and not missing(n) and float(n) <= 1:
        low = high = None
    lo = None if missing(low) else float(low) / scale
    hi = None if missing(high) else float(high) / scale
    x = float(v) / scale
    # without an interval nothing says which integer digits are noise: all are kept
    return sig(x, digits_for(x, lo, hi), whole=lo is None or hi is None)


def is_ci(n: Any) -> bool:
    """Whether ``n`` samples give a 95% interval of the median (an unknown count is trusted:
    rows and reports that carry no count made their interval from enough samples)."""
    return missing(n) or int(n) >= CI_MIN_SAMPLES


def interval(low: Any, high: Any, n: Any = None, scale: float = 1.0) -> str:
    """``a–b`` for a 95% interval; ``n=3 · a–b`` for the min–max range of too few samples for
    one; ``—`` for a single sample; empty when there is none. Both ends get the decimals that
    show the width's first significant digit (two when it starts with 1 or 2, where one digit
    would round it by up to 25%), so the two ends never print as one number."""
    if missing(low) or missing(high):
        return EMPTY
    if not missing(n) and int(n) <= 1:
        return NO_INTERVAL
    a, b = float(low) / scale, float(high) / scale
    width = abs(b - a)
    if width == 0:
        text = f"{sig(a, MAX_DIGITS)}–{sig(b, MAX_DIGITS)}"
    else:
        mag = _magnitude(width)  # the width's first digit, and its second when that is 1 or 2
        dec = min(12, max(0, -mag + (1 if width / 10**mag < 3 else 0)))
        text = f"{a:.{dec}f}–{b:.{dec}f}"
    return text if is_ci(n) else f"n={int(n)} · {text}"


def interval_header(ns: list[Any]) -> str:
    """The header of an interval column over rows of these sample counts: "95% CI" only when
    every interval in it is one."""
    return "95% CI" if all(is_ci(n) for n in ns) else "interval"


def percent(frac: Any, digits: int = 2) -> str:
    """A fraction as a percentage with ``digits`` significant digits (``0.0123`` → ``1.2%``)."""
    if missing(frac):
        return EMPTY
    return sig(float(frac) * 100, digits, whole=True) + "%"


def ratio(v: Any, low: Any = None, high: Any = None) -> str:
    """A speed ratio (``1.23x``) with the digits its interval supports."""
    text = measured(v, low, high)
    return text + "x" if text else EMPTY


def fixed(v: Any, decimals: int = 2) -> str:
    """A share or a ratio at a fixed number of decimals (``0.92``, ``1.43``)."""
    return EMPTY if missing(v) else f"{float(v):.{decimals}f}"


def fixed_range(low: Any, high: Any, decimals: int = 2) -> str:
    """``a–b`` at a fixed number of decimals (a ratio's interval); empty without both ends."""
    if missing(low) or missing(high):
        return EMPTY
    return f"{fixed(low, decimals)}–{fixed(high, decimals)}"


def short(v: Any, digits: int = 4) -> str:
    """``v`` in Python's general format with ``digits`` significant digits (``1235``,
    ``1.235e+04``): the compact figure of exported text and of the runtime table."""
    return EMPTY if missing(v) else f"{float(v):.{digits}g}"


def share(frac: Any, decimals: int = 0) -> str:
    """A setting's fraction as a percentage at fixed decimals (a threshold: ``10%``)."""
    return EMPTY if missing(frac) else f"{float(frac):.{decimals}%}"


def change(frac: Any, whole: bool = False) -> str:
    """A signed relative change as a percentage (``+3.2%``; ``+3%`` when ``whole``, for a
    change whose interval is too wide for tenths of a point to mean anything)."""
    if missing(frac):
        return EMPTY
    return f"{float(frac):+.0%}" if whole else f"{float(frac):+.1%}"


def p_value(p: Any) -> str:
    """A test's p-value: 2 significant digits, ``<0.001`` below that."""
    if missing(p):
        return EMPTY
    return f"{float(p):.2g}" if float(p) >= 1e-3 else "<0.001"


def duration(seconds: float) -> str:
    """A wall time for people: whole seconds up to two minutes, then minutes to one decimal."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def plain(v: Any) -> str:
    """Any cell: a float with 4 significant digits and its integer digits whole, anything else
    (integers, booleans, text) as it is, None/NaN empty."""
    if missing(v):
        return EMPTY
    return sig(v, COUNT_DIGITS, whole=True) if isinstance(v, float) else str(v)


def status(row: Mapping[str, Any]) -> str:
    """The status a reader sees: ``few-samples`` also for a row stored as ``ok`` before that
    status existed (its sample count says so), ``ok (noisy)`` for a noisy measurement."""
    st = str(row.get("status") or "")
    n = row.get("n_samples")
    if st == "ok" and isinstance(n, int) and n < CI_MIN_SAMPLES:
        st = "few-samples"
    if is_measured({"status": st}) and row.get("noisy"):
        return f"{st} (noisy)"
    return st


def few_samples_message(n: int, sample_s: float, calls: int, budget_s: float) -> str:
    """Why a row has fewer samples than an interval needs, in one line: ``sample_s`` is the
    longest sample, of ``calls`` calls."""
    what = f"{n} sample" + ("" if n == 1 else "s")
    if calls == 1 and sample_s > budget_s:
        return (
            f"one call took {sig(sample_s, 2)} s > --budget {budget_s:g} s: {what}; "
            "raise --budget for an interval"
        )
    return (
        f"{what} of {sig(sample_s, 2)} s within --budget {budget_s:g} s (after counting, memory, "
        f"warm-up): raise --budget for an interval"
    )
