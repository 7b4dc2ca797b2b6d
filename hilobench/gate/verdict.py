"""The judged result: per-case verdicts, the whole verdict, and the exit code it maps to
(:mod:`hilobench.gate.gate_errors` holds the codes: 0 pass, 1 regression or a failed claim, 2 usage
error, 3 missing or incompatible baseline, 4 unjudged — every case compared, but some had too
few samples for a verdict). A definite regression outranks a gap, and a missing baseline
outranks too few samples: the gate fails on evidence, and the first thing to fix comes first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hilobench.core.claim_terms import CaseVerdict, ClaimStatus
from hilobench.gate.gate_errors import EXIT_BASELINE, EXIT_PASS, EXIT_REGRESSION, EXIT_UNJUDGED
from hilobench.gate.policy import SpeedPolicy

if TYPE_CHECKING:
    from hilobench.gate.claims import ClaimResult
    from hilobench.gate.speed import SpeedResult


@dataclass
class FieldCheck:
    """One deterministic figure of both sides; it passes only when they are equal."""

    name: str
    base: Any
    cand: Any

    @property
    def ok(self) -> bool:
        return self.base == self.cand


@dataclass
class CaseResult:
    """Everything the gate says about one case."""

    key: str
    label: str
    verdict: CaseVerdict
    checks: list[FieldCheck] = field(default_factory=list)
    speed: SpeedResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def mismatches(self) -> list[FieldCheck]:
        return [c for c in self.checks if not c.ok]

    def to_json(self) -> dict[str, Any]:
        return {
            "case_key": self.key,
            "label": self.label,
            "verdict": self.verdict,
            "mismatches": [c.__dict__ for c in self.mismatches],
            "checked": [c.name for c in self.checks],
            "speed": self.speed.to_json() if self.speed else None,
            "notes": self.notes,
        }


@dataclass
class Verdict:
    """The outcome of judging a candidate against its base."""

    base: str
    candidate: str
    cases: list[CaseResult] = field(default_factory=list)
    claims: list[ClaimResult] = field(default_factory=list)
    policy: SpeedPolicy = field(default_factory=SpeedPolicy)
    env_notes: list[str] = field(default_factory=list)
    env_overridden: bool = False
    refused: str | None = None
    notes: list[str] = field(default_factory=list)
    borderline_fails: bool = True
    #: labels of baseline cases the candidate does not hold (listed, not judged)
    base_only: list[str] = field(default_factory=list)

    def count(self, verdict: CaseVerdict) -> int:
        return sum(1 for c in self.cases if c.verdict == verdict)

    @property
    def failed_claims(self) -> list[ClaimResult]:
        return [c for c in self.claims if c.status == ClaimStatus.FAIL]

    @property
    def exit_code(self) -> int:
        """3 when nothing could be judged; else 1 on any regression; else 3 on any case the
        baseline lacks or claim it cannot check; else 4 on any case with too few samples to
        judge; else 0. A definite regression outranks a gap."""
        if self.refused:
            return EXIT_BASELINE
        bad = self.count(CaseVerdict.REGRESSION) + len(self.failed_claims)
        if self.borderline_fails:
            bad += self.count(CaseVerdict.BORDERLINE)
        if bad:
            return EXIT_REGRESSION
        gaps = self.count(CaseVerdict.MISSING_BASE)
        gaps += sum(1 for c in self.claims if c.status == ClaimStatus.MISSING)
        if gaps:
            return EXIT_BASELINE
        return EXIT_UNJUDGED if self.count(CaseVerdict.UNJUDGED) else EXIT_PASS

    @property
    def headline(self) -> str:
        if self.refused:
            return f"REFUSED: {self.refused}"
        parts = []
        for v, word in (
            (CaseVerdict.REGRESSION, "regression"),
            (CaseVerdict.BORDERLINE, "borderline"),
            (CaseVerdict.MISSING_BASE, "not in baseline"),
            (CaseVerdict.UNJUDGED, "unjudged"),
            (CaseVerdict.IMPROVED, "improved"),
        ):
            n = self.count(v)
            if n:
                parts.append(f"{n} {word}")
        if self.base_only:
            parts.append(f"{len(self.base_only)} only in baseline")
        nf = len(self.failed_claims)
        if nf:
            parts.append(f"{nf} claim(s) failed")
        words = {EXIT_PASS: "PASS", EXIT_REGRESSION: "FAIL", EXIT_BASELINE: "INCOMPLETE",
                 EXIT_UNJUDGED: "UNJUDGED"}  # fmt: skip
        n = len(self.cases)
        return f"{words[self.exit_code]}: {n} case(s)" + (f", {', '.join(parts)}" if parts else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "candidate": self.candidate,
            "exit_code": self.exit_code,
            "headline": self.headline,
            "refused": self.refused,
            "env_overridden": self.env_overridden,
            "env_notes": self.env_notes,
            "notes": self.notes,
            "base_only": self.base_only,
            "policy": self.policy.__dict__,
            "cases": [c.to_json() for c in self.cases],
            "claims": [c.to_json() for c in self.claims],
        }
