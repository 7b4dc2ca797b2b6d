"""A verdict for people: the pull-request comment (markdown) and the terminal tables.

Failing cases come first in the comment, so a reviewer sees what broke without scrolling.
"""

from __future__ import annotations

import math

from rich.table import Table

from hilobench.gate.claim_terms import CaseVerdict, ClaimStatus
from hilobench.gate.claims import ClaimResult
from hilobench.gate.policy import DETERMINISTIC
from hilobench.gate.verdict import CaseResult, Verdict

CASE_HEADER = ["case", "counts", "base ms", "cand ms", "change", "95% CI", "p", "n", "verdict"]
CLAIM_HEADER = ["claim", "rows", "ratio", "95% CI", "method", "verdict"]


def _pct(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:+.1%}"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:.3g}"


def _p(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2g}" if x >= 1e-3 else "<0.001"


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
    ci = f"{_pct(s.ci[0])}…{_pct(s.ci[1])}" if s and s.ci else "-"
    return [
        c.label,
        counts,
        _ms(s.base_median_s) if s else "-",
        _ms(s.cand_median_s) if s else "-",
        _pct(s.change) if s else "-",
        ci,
        _p(s.p_value) if s else "-",
        (f"{s.n_base} {s.unit}" if s.n_base == s.n_cand else f"{s.n_base}/{s.n_cand}")
        if s and s.n_base
        else "-",
        verdict,
    ]


def claim_cells(c: ClaimResult) -> list[str]:
    """One claims-table row: claim, the rows paired, ratio, interval, method, verdict."""
    ratio = "-" if c.ratio is None else f"{c.ratio:.3f}"
    ci = "-" if c.ci is None else f"{c.ci[0]:.3f}…{c.ci[1]:.3f}"
    rows = f"{c.a_label} vs {c.b_label}" if c.a_label else c.note
    return [c.text, rows, ratio, ci, c.method or "-", c.status]


def _policy_line(v: Verdict) -> str:
    p = v.policy
    return (
        f"A case regresses when its time rises by >= {p.min_effect:.0%} and a one-sided rank "
        f"test gives p < {p.alpha} (>= {p.min_samples} builds or samples a side); borderline "
        f"cases are re-measured once and fail if a rise of "
        f">= {p.confirm_fraction * p.min_effect:.0%} is confirmed. Counts "
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
    ct = Table(title="claims", header_style="bold")
    for h in CLAIM_HEADER:
        ct.add_column(h, justify="right" if h in ("ratio", "95% CI") else "left")
    for c in claims:
        cells = claim_cells(c)
        color = {ClaimStatus.PASS: "green", ClaimStatus.FAIL: "red",
                 ClaimStatus.INCONCLUSIVE: "yellow"}.get(c.status)  # fmt: skip
        if color:
            cells[-1] = f"[{color}]{cells[-1]}[/{color}]"
        ct.add_row(*cells)
    return ct


def verdict_tables(verdict: Verdict) -> list[Table]:
    """Terminal view: the cases table and, when there are claims, the claims table."""
    style = {CaseVerdict.REGRESSION: "red", CaseVerdict.BORDERLINE: "yellow",
             CaseVerdict.IMPROVED: "green"}  # fmt: skip
    t = Table(title=verdict.headline, header_style="bold")
    for h in CASE_HEADER:
        t.add_column(h, justify="left" if h in ("case", "counts", "verdict") else "right")
    for c in verdict.cases:
        cells = case_cells(c)
        color = style.get(c.verdict)
        if color:
            cells[-1] = f"[{color}]{cells[-1]}[/{color}]"
        t.add_row(*cells)
    out = [t]
    if verdict.claims:
        out.append(claims_table(verdict.claims))
    return out
