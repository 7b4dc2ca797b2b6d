"""Verdicts and claim statuses are string-valued enums: code compares members, while the JSON
report, the tables and rows keep the plain words they always had."""

from __future__ import annotations

import json

from hilobench.core.claim_terms import CaseVerdict, ClaimStatus
from hilobench.gate.claims import Claim, ClaimResult
from hilobench.gate.comment import verdict_markdown
from hilobench.gate.gate_errors import EXIT_BASELINE, EXIT_PASS, EXIT_REGRESSION
from hilobench.gate.verdict import CaseResult, Verdict


def test_enums_keep_the_words_of_reports_and_rows() -> None:
    assert [v.value for v in CaseVerdict] == [
        "pass", "regression", "borderline", "improved", "unjudged", "missing_base",
    ]  # fmt: skip
    assert CaseVerdict("regression") is CaseVerdict.REGRESSION and ClaimStatus.FAIL == "fail"
    claim = Claim.parse({"a": "hilo", "b": "msa", "metric": "macs", "min_ratio": 1.3})
    assert claim.judge(1.5, 1.6) is ClaimStatus.PASS
    assert claim.judge(1.0, 1.2) is ClaimStatus.FAIL
    assert claim.judge(1.2, 1.4) is ClaimStatus.INCONCLUSIVE
    v = Verdict("base", "cand", [CaseResult("k", "msa", CaseVerdict.BORDERLINE)])
    v.claims = [ClaimResult(claim, ClaimStatus.PASS)]
    data = json.loads(json.dumps(v.to_json()))
    assert data["cases"][0]["verdict"] == "borderline" and data["claims"][0]["status"] == "pass"
    md = verdict_markdown(v)
    assert "**borderline**" in md and "CaseVerdict" not in md and "ClaimStatus" not in md


def test_exit_codes_follow_the_enum_verdicts() -> None:
    def code(*verdicts: CaseVerdict, borderline_fails: bool = True) -> int:
        cases = [CaseResult(str(i), "x", v) for i, v in enumerate(verdicts)]
        return Verdict("b", "c", cases, borderline_fails=borderline_fails).exit_code

    assert code(CaseVerdict.PASS, CaseVerdict.IMPROVED) == EXIT_PASS
    assert code(CaseVerdict.PASS, CaseVerdict.REGRESSION, CaseVerdict.UNJUDGED) == EXIT_REGRESSION
    assert code(CaseVerdict.BORDERLINE) == EXIT_REGRESSION
    assert code(CaseVerdict.BORDERLINE, borderline_fails=False) == EXIT_PASS
    assert code(CaseVerdict.MISSING_BASE) == EXIT_BASELINE


def test_the_gate_exit_codes_keep_their_documented_values() -> None:
    from hilobench.gate import gate_errors

    codes = ("PASS", "REGRESSION", "USAGE", "BASELINE", "UNJUDGED")
    assert [getattr(gate_errors, f"EXIT_{c}") for c in codes] == [0, 1, 2, 3, 4]
