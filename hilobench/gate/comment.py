"""A verdict for people: the pull-request comment (markdown) and the terminal tables.

Failing cases come first in the comment, so a reviewer sees what broke without scrolling.
"""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from hilobench.core import numfmt as nf
from hilobench.core.claim_terms import CaseVerdict, ClaimStatus
from hilobench.core.terminal import grid
from hilobench.gate.claims import ClaimResult
from hilobench.gate.policy import DETERMINISTIC
from hilobench.gate.speed import SpeedResult
from hilobench.gate.verdict import CaseResult, Verdict

CASE_HEADER = ["case", "counts", "base ms", "cand ms", "change", "95% CI", "p", "n", "verdict"]
CLAIM_HEADER = ["claim", "rows", "ratio", "95% CI", "method", "verdict"]


#: Width (a fraction) of a change's interval from which the change shows whole percents: the
#: tenths of a point inside an interval 20 points wide are noise (and widen the table).
WHOLE_PCT_WIDTH = 0.2


def _pct(x: float | None, ci: tuple[float, float] | None = None) -> str:
    """A change in time, in whole percents where its interval is too wide for tenths."""
    return nf.change(x, whole=ci is not None and ci[1] - ci[0] >= WHOLE_PCT_WIDTH)


def _ms(x: float | None, ci: tuple[float, float] | None = None) -> str:
    """A median time in ms with the digits its relative interval (of the change) supports."""
    if x is None:
        return nf.EMPTY
    lo, hi = (x * (1 + ci[0]), x * (1 + ci[1])) if ci else (None, None)
    return nf.measured(x * 1e3, lo and lo * 1e3, hi and hi * 1e3)


def case_cells(c: CaseResult) -> list[str]:
    """One table row: case, counts, base / candidate median ms, change, CI, p, n, verdict."""
    counts = "ok" if c.checks and not c.mismatches else ("-" if not c.checks else "")
    if c.mismatches:
        counts = "; ".join(
            f"{m.name} {m.base}→{m.cand}"
            + (f" ({m.cand - m.base:+d})" if isinstance(m.base, int) else "")
            for m in c.mismatches
        )
    s = c.speed
    verdict = str(c.verdict)
    if s and s.first is not None:
        verdict += " (re-measured)"
    if c.verdict == CaseVerdict.BORDERLINE and s and "not re-measured" in s.note:
        verdict += " (not re-measured)"
    ci = f"{_pct(s.ci[0], s.ci).rstrip('%')} to {_pct(s.ci[1], s.ci)}" if s and s.ci else nf.EMPTY
    return [
        c.label,
        counts,
        _ms(s.base_median_s, s.ci) if s else nf.EMPTY,
        _ms(s.cand_median_s, s.ci) if s else nf.EMPTY,
        _pct(s.change, s.ci) if s else nf.EMPTY,
        ci,
        nf.p_value(s.p_value) if s else nf.EMPTY,
        _n(s) if s and s.n_base else nf.EMPTY,
        verdict,
    ]


def _n(s: SpeedResult) -> str:
    """Units a side (``22``; ``5 builds`` when builds, not samples, are the units)."""
    n = str(s.n_base) if s.n_base == s.n_cand else f"{s.n_base}/{s.n_cand}"
    return n if s.unit == "samples" else f"{n} {s.unit}"


def _pair(a: str, b: str) -> str:
    """``hilo/reference vs msa/reference · 224 b4 float32 infer``: a setting both labels share
    is said once."""
    (a0, _, a1), (b0, _, b1) = a.partition(" "), b.partition(" ")
    return f"{a0} vs {b0} · {a1}" if a1 and a1 == b1 else f"{a} vs {b}"


def claim_cells(c: ClaimResult) -> list[str]:
    """One claims-table row: claim, the rows paired, ratio, interval, method, verdict."""
    exact = c.method == "exact"  # a ratio of counts: 4 digits, as counts have; no interval
    lo, hi = c.ci if c.ci is not None and not exact else (None, None)
    ratio = nf.count(c.ratio) if exact else nf.measured(c.ratio, lo, hi)
    ci = nf.interval(lo, hi)
    rows = _pair(c.a_label, c.b_label) if c.a_label else c.note
    return [c.text, rows, ratio, ci, c.method or "-", c.status]


def _policy_line(v: Verdict) -> str:
    p = v.policy
    return (
        f"A case regresses when its time rises by >= {nf.share(p.min_effect)} and a one-sided rank "
        f"test gives p < {p.alpha} (>= {p.min_samples} builds or samples a side); borderline "
        f"cases are re-measured once and fail if a rise of "
        f">= {nf.share(p.confirm_fraction * p.min_effect)} is confirmed. Counts "
        f"({', '.join(DETERMINISTIC)}) must be equal."
    )


def verdict_markdown(verdict: Verdict, title: str = "hilobench gate") -> str:
    """A pull-request comment: verdict, environment, failing cases first, then claims."""
    lines = [f"### {title}: {verdict.headline}", ""]
    lines.append(f"- base: `{verdict.base}`")
    lines.append(f"- candidate: `{verdict.candidate}`")
    if verdict.env_overridden:
        lines.append(
            "- **environment mismatch overridden** (--allow-env-mismatch): "
            + "; ".join(verdict.env_notes)
        )
    elif verdict.env_notes:
        lines.append("- environment: " + "; ".join(verdict.env_notes))
    for n in verdict.notes:
        lines.append(f"- {n}")
    if verdict.refused:
        return "\n".join(lines) + "\n"
    lines += ["", _policy_line(verdict), ""]
    V = CaseVerdict
    order = {V.REGRESSION: 0, V.BORDERLINE: 1, V.MISSING_BASE: 2, V.UNJUDGED: 3}
    cases = sorted(verdict.cases, key=lambda c: order.get(c.verdict, 9))
    if cases:
        lines.append("| " + " | ".join(CASE_HEADER) + " |")
        lines.append("|" + "|".join("---" for _ in CASE_HEADER) + "|")
        for c in cases:
            cells = [x.replace("|", "\\|") for x in case_cells(c)]
            if c.verdict in (CaseVerdict.REGRESSION, CaseVerdict.BORDERLINE):
                cells[-1] = f"**{cells[-1]}**"
            lines.append("| " + " | ".join(cells) + " |")
        notes = [(c.label, n) for c in cases for n in c.notes]
        notes += [(c.label, c.speed.note) for c in cases if c.speed and c.speed.note]
        if notes:
            lines.append("")
            lines += [f"- {label}: {n}" for label, n in notes]
    if verdict.claims:
        lines += ["", "| " + " | ".join(CLAIM_HEADER) + " |"]
        lines.append("|" + "|".join("---" for _ in CLAIM_HEADER) + "|")
        for cl in verdict.claims:
            cells = [x.replace("|", "\\|") for x in claim_cells(cl)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def claims_table(claims: list[ClaimResult]) -> Table:
    """Terminal table of claim results, verdicts coloured."""
    colors = {ClaimStatus.PASS: "green", ClaimStatus.FAIL: "red",
              ClaimStatus.INCONCLUSIVE: "yellow"}  # fmt: skip
    body = [_coloured(claim_cells(c), colors.get(c.status)) for c in claims]
    text = [h not in ("ratio", "95% CI") for h in CLAIM_HEADER]
    return grid("claims", CLAIM_HEADER, body, text, markup={len(CLAIM_HEADER) - 1})


def _coloured(cells: list[str], color: str | None) -> list[str]:
    """``cells`` with the last (the verdict) as markup, in ``color`` when given."""
    last = escape(cells[-1])
    return [*cells[:-1], f"[{color}]{last}[/{color}]" if color else last]


def verdict_tables(verdict: Verdict) -> list[Table]:
    """Terminal view: the cases table and, when there are claims, the claims table."""
    style = {CaseVerdict.REGRESSION: "red", CaseVerdict.BORDERLINE: "yellow",
             CaseVerdict.IMPROVED: "green"}  # fmt: skip
    body = [_coloured(case_cells(c), style.get(c.verdict)) for c in verdict.cases]
    text = [h in ("case", "counts", "verdict") for h in CASE_HEADER]
    out = [grid(verdict.headline, CASE_HEADER, body, text, markup={len(CASE_HEADER) - 1})]
    if verdict.claims:
        out.append(claims_table(verdict.claims))
    return out
