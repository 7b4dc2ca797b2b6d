"""The sections of a suite besides its cases: ``compare`` groups, ``claims``, ``gate`` and
``slurm`` (scheduler settings for ``suite run --executor slurm``).

A compare group interleaves, round by round, all member cases that share a setting (every Case
field except the name and the options, plus the token map); each such setting must have exactly
one case of the reference member. With ``across: backend`` (or another of
:data:`ACROSS_FIELDS`) a group interleaves each member with itself at every value of that field
instead, ``reference`` naming the value the others are compared with (``eager``): the ratio of a
runtime to eager is then a per-round ratio with an interval, like any compare group's.

Claims compare case ``a`` with case ``b`` on ``metric`` and read "a is at least ``min_ratio``
(at most ``max_ratio``) times better than b": the ratio is ``a/b`` for ``throughput`` and
``b/a`` for the costs ``latency``, ``macs``, ``params`` and ``memory``. They stay plain dicts
here; the regression gate parses them (:mod:`hilobench.gate.claims`).
"""

from __future__ import annotations

import fnmatch
import sys
from typing import Any

from hilobench.cluster.packing import SLURM_KEYS, check_setting
from hilobench.core.claim_terms import CLAIM_DEVICES, CLAIM_KEYS, CLAIM_METRICS
from hilobench.core.plan import CompareGroup, SuiteCase
from hilobench.suite.fields import Where, is_int, is_num, type_name

#: Settings of the regression gate a suite may tune (see hilobench.gate.policy).
GATE_KEYS = ("min_effect", "significance", "budget", "confirm_fraction", "min_samples")
#: The old spelling of ``significance`` (the rank test's level), still taken with a note.
OLD_SIGNIFICANCE = "alpha"
COMPARE_KEYS = ("name", "members", "pattern", "reference", "across")
#: Case fields a compare group may interleave one case across (``across:``).
ACROSS_FIELDS = ("backend", "impl", "dtype")


def parse_compare(w: Where, raw: Any, cases: list[SuiteCase]) -> list[CompareGroup]:
    """``compare:``, one group or a list of them, checked against the expanded cases."""
    if raw is None:
        return []
    groups_raw = raw if isinstance(raw, list) else [raw]
    ids = list(dict.fromkeys(sc.id for sc in cases))
    groups: list[CompareGroup] = []
    owner: dict[str, str] = {}
    for n, g in enumerate(groups_raw, 1):
        if not isinstance(g, dict):
            raise w.fail(f"compare group {n}", f"expected a mapping, got {type_name(g)}")
        gname = g.get("name", f"group{n}")
        where = f"compare {gname!r}"
        if not isinstance(gname, str) or not gname:
            raise w.fail(f"compare group {n}: field 'name'", "expected a non-empty string")
        for k in g:
            if k not in COMPARE_KEYS:
                raise w.fail(
                    f"{where}: field {k!r}", f"unknown field; allowed: {', '.join(COMPARE_KEYS)}"
                )
        if ("members" in g) == ("pattern" in g):
            raise w.fail(where, "needs exactly one of 'members' (case ids or 'all') or 'pattern'")
        if "pattern" in g:
            pat = g["pattern"]
            if not isinstance(pat, str):
                raise w.fail(f"{where}: field 'pattern'", "expected a glob string, e.g. '*'")
            members = [i for i in ids if fnmatch.fnmatchcase(i, pat)]
            if not members:
                raise w.fail(
                    f"{where}: field 'pattern'",
                    f"{pat!r} matches no case id; case ids: {', '.join(ids)}",
                )
        elif g["members"] == "all":
            members = ids
        else:
            members = g["members"]
            if not isinstance(members, list) or not members:
                raise w.fail(f"{where}: field 'members'", "expected a list of case ids or 'all'")
            for m in members:
                if m not in ids:
                    raise w.fail(
                        f"{where}: field 'members'",
                        f"unknown case id {m!r}; case ids: {', '.join(ids)}",
                    )
        across = g.get("across")
        if across is not None and across not in ACROSS_FIELDS:
            raise w.fail(
                f"{where}: field 'across'",
                f"{across!r} is not a field to interleave across; allowed: "
                f"{', '.join(ACROSS_FIELDS)}",
            )
        ref = g.get("reference")
        if across is not None:
            values = list(dict.fromkeys(
                str(getattr(sc.case, across)) for sc in cases if sc.id in members))  # fmt: skip
            ref = values[0] if ref is None else ref
            if ref not in values:
                raise w.fail(
                    f"{where}: field 'reference'",
                    f"{ref!r} is not a {across} of the members; they run: {', '.join(values)}",
                )
        elif ref is None:
            ref = members[0]
        elif ref not in members:
            raise w.fail(
                f"{where}: field 'reference'",
                f"{ref!r} is not a member; members: {', '.join(members)}",
            )
        for m in members:
            if m in owner:
                raise w.fail(
                    f"{where}: field 'members'", f"case {m!r} is already in compare {owner[m]!r}"
                )
            owner[m] = gname
        group = CompareGroup(gname, tuple(members), ref, across)
        for items in _contexts(group, cases).values():
            refs = [sc for sc in items if group.is_reference(sc)]
            if len(refs) != 1:
                sample = items[0].case
                raise w.fail(
                    f"{where}: field 'reference'",
                    f"needs exactly one {ref!r} case at every setting; found {len(refs)} at "
                    f"{sample.label()}",
                )
        groups.append(group)
    return groups


def _contexts(
    group: CompareGroup, cases: list[SuiteCase]
) -> dict[tuple[Any, ...], list[SuiteCase]]:
    out: dict[tuple[Any, ...], list[SuiteCase]] = {}
    for sc in cases:
        if sc.id in group.members:
            out.setdefault(group.setting(sc), []).append(sc)
    return out


def parse_claims(w: Where, raw: Any, ids: set[str]) -> list[dict[str, Any]]:
    """``claims:``, a list of ratio claims between case ids, kept as plain dicts."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise w.fail("field 'claims'", f"expected a list of claims, got {type_name(raw)}")
    claims = []
    for n, c in enumerate(raw, 1):
        where = f"claim {n}"
        if not isinstance(c, dict):
            raise w.fail(
                where,
                f"expected a mapping like {{a: hilo, b: sra, metric: "
                f"throughput, min_ratio: 1.3}}, got {type_name(c)}",
            )
        for k in c:
            if k not in CLAIM_KEYS:
                raise w.fail(
                    f"{where}: field {k!r}", f"unknown field; allowed: {', '.join(CLAIM_KEYS)}"
                )
        for k in ("a", "b"):
            if k not in c:
                raise w.fail(where, f"missing field {k!r} (a case id)")
            if c[k] not in ids:
                raise w.fail(
                    f"{where}: field {k!r}",
                    f"unknown case id {c[k]!r}; case ids: {', '.join(sorted(ids))}",
                )
        if "device" in c and c["device"] not in CLAIM_DEVICES:
            raise w.fail(
                f"{where}: field 'device'",
                f"unknown device {c['device']!r}; choose from: {', '.join(CLAIM_DEVICES)}",
            )
        metric = c.get("metric", "throughput")
        if metric not in CLAIM_METRICS:
            raise w.fail(
                f"{where}: field 'metric'",
                f"unknown metric {metric!r}; choose from: {', '.join(CLAIM_METRICS)}",
            )
        if "min_ratio" not in c and "max_ratio" not in c:
            raise w.fail(where, "needs 'min_ratio' and/or 'max_ratio'")
        for k in ("min_ratio", "max_ratio"):
            if k in c and not (is_num(c[k]) and c[k] > 0):
                raise w.fail(f"{where}: field {k!r}", f"expected a number > 0, got {c[k]!r}")
        claims.append({**c, "metric": metric})
    return claims


def parse_gate(w: Where, raw: Any) -> dict[str, Any]:
    """``gate: {min_effect, significance, budget, confirm_fraction, min_samples}``, all
    optional; ``alpha``, the old spelling of ``significance``, is taken with a one-line note."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise w.fail("field 'gate'", f"expected a mapping, got {type_name(raw)}")
    if OLD_SIGNIFICANCE in raw:
        if "significance" in raw:
            raise w.fail("gate", "'alpha' is the old spelling of 'significance'; give one of them")
        sys.stderr.write(f"hilobench: note: {w.source}: gate: 'alpha' is now 'significance'\n")
        raw = {("significance" if k == OLD_SIGNIFICANCE else k): v for k, v in raw.items()}
    for k, v in raw.items():
        where = f"gate: field {k!r}"
        if k not in GATE_KEYS:
            raise w.fail(where, f"unknown field; allowed: {', '.join(GATE_KEYS)}")
        if k == "min_samples":
            if not (is_int(v) and v >= 9):
                raise w.fail(where, f"expected an integer >= 9, got {v!r}")
        elif k in ("significance", "confirm_fraction"):
            if not (is_num(v) and 0 < v < 1):
                raise w.fail(where, f"expected a number in (0, 1), got {v!r}")
        elif not (is_num(v) and v > 0):
            raise w.fail(where, f"expected a number > 0, got {v!r}")
    return dict(raw)


def parse_slurm(w: Where, raw: Any) -> dict[str, Any]:
    """``slurm: {partition, gpus_per_node, constraint, time, array_parallelism, units_per_job,
    cpus_per_task}``, all optional; the command line's options override them."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise w.fail("field 'slurm'", f"expected a mapping, got {type_name(raw)}")
    for k, v in raw.items():
        if k not in SLURM_KEYS:
            raise w.fail(f"slurm: field {k!r}", f"unknown field; allowed: {', '.join(SLURM_KEYS)}")
        try:
            check_setting(k, v)
        except ValueError as e:
            raise w.fail(f"slurm: field {k!r}", str(e)) from None
    return dict(raw)
