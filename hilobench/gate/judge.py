"""The judge: candidate rows against base rows → a :class:`Verdict`. Nothing here measures.

- Rows are matched by ``case_key`` (the case identity), so a re-measurement on any machine
  lines up with its baseline.
- Counts (params, MACs, traced MACs) and the CPU peak tensor bytes do not depend on the
  machine's mood: they must be equal, to the unit.
- Speed is judged by :mod:`hilobench.gate.speed`; a borderline case is measured again through
  a callback (the gate's driver), or read from stored re-measurements.
- Speeds from different machine classes are not compared: that is a refusal (exit 3) unless
  explicitly overridden, and the override is written into the verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hilobench.core.claim_terms import CaseVerdict
from hilobench.core.row import is_measured
from hilobench.gate.claims import Claim, check_claims
from hilobench.gate.policy import DETERMINISTIC, Policies, SpeedPolicy
from hilobench.gate.row_ids import row_label
from hilobench.gate.speed import Timings, judge_speed
from hilobench.gate.stored_runs import (
    JudgedRun,
    env_differences,
    env_info_differences,
    machine_of,
)
from hilobench.gate.verdict import CaseResult, FieldCheck, Verdict
from hilobench.measure.env import machine_class_label
from hilobench.measure.rowstats import field

Remeasure = Callable[[str], Timings | None]
"""Re-measure one case by key, afresh: its new timings, or None when it cannot be done."""


def deterministic_checks(base: Mapping[str, Any], cand: Mapping[str, Any]) -> list[FieldCheck]:
    """Exact checks of the counts both rows have (``peak_mem_bytes`` on the CPU only)."""
    checks = []
    for name in DETERMINISTIC:
        if name == "peak_mem_bytes" and str(cand.get("device", "cpu")).startswith("cuda"):
            continue
        if base.get(name) is None or cand.get(name) is None:
            continue
        checks.append(FieldCheck(name, base[name], cand[name]))
    return checks


def judge_case(
    key: str,
    base: Mapping[str, Any] | None,
    cand: Mapping[str, Any],
    policy: SpeedPolicy,
    *,
    speed: bool = True,
    remeasure: Remeasure | None = None,
) -> CaseResult:
    """Judge one case: deterministic figures, status, then speed (re-measuring borderlines)."""
    label = row_label(cand)
    if base is None:
        return CaseResult(key, label, CaseVerdict.MISSING_BASE, notes=["case not in the baseline"])
    res = CaseResult(key, label, CaseVerdict.PASS, checks=deterministic_checks(base, cand))
    stopped = [
        side for side, r in (("base", base), ("candidate", cand)) if r.get("status") == "partial"
    ]
    if stopped and not res.mismatches:  # an interrupted compare group: finish it, then judge
        res.verdict = CaseVerdict.UNJUDGED
        res.notes.append(f"{' and '.join(stopped)}: partial (a stopped compare group; finish "
                         "it with `suite run --resume`)")  # fmt: skip
        return res
    b_ok, c_ok = is_measured(base, "ok"), is_measured(cand, "ok")
    if b_ok and not c_ok:
        res.verdict = CaseVerdict.REGRESSION
        msg = cand.get("message") or ""
        res.notes.append(f"candidate {cand.get('status')}: {msg}".strip(": "))
    elif not b_ok:
        res.notes.append(f"base {base.get('status')}: speed not compared")
    for side, row in (("base", base), ("candidate", cand)):  # measured, but thinly
        if row.get("status") == "few-samples":
            res.notes.append(f"{side} few-samples: {field(row, 'n_samples')} sample(s)")
    if res.mismatches:
        res.verdict = CaseVerdict.REGRESSION
    if not speed or not (b_ok and c_ok):
        return res
    first = judge_speed(Timings.of_rows(base, cand), policy)
    res.speed = first
    if first.verdict == CaseVerdict.BORDERLINE:
        again = remeasure(key) if remeasure is not None else None
        if again is None:
            first.note += "; not re-measured (stored results; re-run with `hilobench gate`)"
        else:
            second = judge_speed(again, policy, confirming=True)
            second.first = first
            res.speed = second
    if res.verdict == CaseVerdict.PASS:
        res.verdict = res.speed.verdict
    return res


def stored_remeasure(base: JudgedRun, cand: JudgedRun) -> Remeasure:
    """Re-measurement read from stored rows (``remeasure_samples_s``), as the gate writes."""

    def get(key: str) -> Timings | None:
        b, c = base.rows.get(key, {}), cand.rows.get(key, {})
        if not b.get("remeasure_samples_s") or not c.get("remeasure_samples_s"):
            return None
        return Timings.of_rows(b, c, prefix="remeasure_")

    return get


def judge_runs(
    base: JudgedRun,
    cand: JudgedRun,
    *,
    policies: Policies | None = None,
    claims: Sequence[Mapping[str, Any] | Claim] | None = None,
    allow_env_mismatch: bool = False,
    remeasure: Remeasure | None = None,
    borderline_fails: bool = True,
    same_job: bool = False,
) -> Verdict:
    """Judge every candidate case against the base. Refuses (``verdict.refused``) when the
    machine classes differ and no override was given; speed is never compared with a
    deterministic-only baseline. ``same_job``: both sides were just measured interleaved on
    this machine (the gate), so their environment is the same by construction."""
    policies = policies or Policies()
    verdict = Verdict(
        base.path, cand.path, policy=policies.default, borderline_fails=borderline_fails
    )
    speed = not base.deterministic_only
    diffs = env_differences(base, cand)
    info = env_info_differences(base, cand)
    if info:
        where = "" if diffs else f" (same machine class: {machine_class_label(machine_of(cand))})"
        verdict.notes.append(
            f"recorded environment differences that do not affect comparability{where}: "
            + "; ".join(info)
        )
    if same_job:
        if diffs:
            verdict.notes.append(
                "the two revisions record this machine differently: " + "; ".join(diffs)
            )
        diffs = []
    if diffs:
        verdict.env_notes = diffs
        if not allow_env_mismatch:
            verdict.refused = (
                "environments differ, speeds are not comparable ("
                + "; ".join(diffs)
                + "); measure both here with `hilobench gate`, or pass --allow-env-mismatch"
            )
            return verdict
        verdict.env_overridden = True
    if base.deterministic_only:
        verdict.notes.append("baseline holds deterministic figures only: speed not compared")
    if remeasure is None:
        remeasure = stored_remeasure(base, cand)
    for key, row in cand.rows.items():
        verdict.cases.append(
            judge_case(
                key,
                base.rows.get(key),
                row,
                policies.for_case(key),
                speed=speed,
                remeasure=remeasure,
            )
        )
    verdict.base_only = [row_label(r) for k, r in base.rows.items() if k not in cand.rows]
    if verdict.base_only:
        shown = ", ".join(verdict.base_only[:10])
        more = len(verdict.base_only) - 10
        verdict.notes.append(
            f"{len(verdict.base_only)} case(s) only in the baseline, not judged: {shown}"
            + (f" (+{more} more)" if more > 0 else "")
        )
    isolation = _isolation_note(base, cand)
    if isolation:
        verdict.notes.append(isolation)
    if any(c.speed is not None and c.speed.unit == "samples" for c in verdict.cases):
        tb, tc = base.env.get("timestamp"), cand.env.get("timestamp")
        when = f" ({tb} and {tc})" if tb and tc else ""
        verdict.notes.append(
            f"base and candidate were timed separately{when}: what changed on the machine "
            "between the runs is not cancelled, so speed verdicts are indicative; "
            "`hilobench gate` times both sides interleaved"
        )
    all_claims = list(claims) if claims is not None else list(cand.claims)
    if all_claims:
        verdict.claims = check_claims(cand.rows.values(), all_claims)
    return verdict


def _isolation_note(base: JudgedRun, cand: JudgedRun) -> str | None:
    """A note when one side was measured in a fresh worker process per case and the other in
    one process (``--no-isolate``): caches and library state carried between cases can move
    speed and memory, so such a difference is worth knowing before reading the verdicts."""

    def how(run: JudgedRun) -> str | None:
        seen = {r.get("isolated") for r in run.rows.values() if r.get("isolated") is not None}
        if len(seen) != 1:
            return "mixed" if seen else None
        return "isolated (a process per case)" if seen.pop() else "in-process (--no-isolate)"

    b, c = how(base), how(cand)
    if b is None or c is None or b == c:
        return None
    return f"base measured {b}, candidate {c}: cached state differs between the two"
