"""What the runner needs from a suite: its cases, compare groups, and the units they form.

A :class:`SuiteCase` is one expanded case plus how to run it; a :class:`CompareGroup` names
cases that are timed together; :func:`plan` turns both into :class:`Unit` s, one worker each;
:func:`select` picks cases by id, name or label. Nothing here reads a file (that is
:mod:`hilobench.suite.loader`), so the runner and the single-shot commands need no YAML parser.
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass
from typing import Any

from hilobench.core.case import SETTING_FIELDS, Case

#: Seconds before an isolated worker is killed, unless the suite says otherwise.
DEFAULT_TIMEOUT_S = 1800.0
#: Per-case overhead (seconds) assumed by the ETA besides the timing budget.
OVERHEAD_S = 4.0
#: Case fields that define a compare group's setting, besides the ``tokens`` option.
CONTEXT_FIELDS = ("kind", *SETTING_FIELDS)
#: Fields a group ``across`` one field also lets vary: the old ``compile`` flag follows the
#: backend (``backend: compile`` sets it).
ACROSS_ALSO = {"backend": ("backend", "compile")}


def search_key(case: Case, limit: int) -> str:
    """The row's ``case_key``: what was searched (the case at any batch) and under which
    limit, so it never matches a timed row of the same case."""
    ident = case.with_(batch=1).key
    return hashlib.sha1(f"{ident}/max_batch/{limit}".encode()).hexdigest()[:12]


@dataclass(frozen=True)
class SuiteCase:
    """One expanded case plus where it came from and how to run it."""

    case: Case
    id: str
    entry: int = 0
    timeout: float = DEFAULT_TIMEOUT_S
    count: bool = True
    #: this case's smallest slowdown that the gate fails on (None: the suite's or the default)
    min_effect: float | None = None
    #: a suite's ``max_batch: {mem_limit: ...}``: search the largest batch within this many
    #: bytes instead of timing (:mod:`hilobench.run.maxbatch`); None: time the case
    max_batch: int | None = None

    @property
    def row_key(self) -> str:
        """The ``case_key`` of this case's row: a search's row has a key of its own."""
        if self.max_batch is None:
            return self.case.key
        return search_key(self.case, self.max_batch)

    def context(self, across: str | None = None) -> tuple[Any, ...]:
        """The setting a compare group matches members on; with ``across`` (a field the group
        interleaves over) that field is left out and the case id put in."""
        c = self.case
        drop = ACROSS_ALSO.get(across or "", (across,))
        fields = tuple(getattr(c, f) for f in CONTEXT_FIELDS if f not in drop)
        return fields + (c.opts.get("tokens"),) + ((self.id,) if across else ())


@dataclass(frozen=True)
class CompareGroup:
    """Cases timed together, round by round; ratios are to the ``reference`` member.

    With ``across`` (a case field, e.g. ``backend``) a group instead interleaves each member
    with itself at every value of that field, and ``reference`` is a value of it (``eager``):
    the ratio of hilo under ONNX Runtime to hilo under eager is then a per-round ratio."""

    name: str
    members: tuple[str, ...]
    reference: str
    across: str | None = None

    def setting(self, sc: SuiteCase) -> tuple[Any, ...]:
        """What the members of one unit of this group share."""
        return sc.context(self.across)

    def is_reference(self, sc: SuiteCase) -> bool:
        if self.across is None:
            return sc.id == self.reference
        return str(getattr(sc.case, self.across)) == self.reference


@dataclass
class Unit:
    """What one worker measures: a single case, or the members of a compare group at one
    setting (``ref`` indexes the reference member, None when it is not part of this run)."""

    items: list[SuiteCase]
    group: CompareGroup | None = None
    ref: int | None = None

    @property
    def weight(self) -> float:
        return sum(sc.case.budget + OVERHEAD_S for sc in self.items)


def plan(cases: list[SuiteCase], groups: list[CompareGroup] | None = None) -> list[Unit]:
    """Cases → units in suite order; a group's members at one setting form one unit, placed
    where its first member appears."""
    owner = {m: g for g in groups or [] for m in g.members}
    units: list[Unit] = []
    by_ctx: dict[tuple[str, tuple[Any, ...]], Unit] = {}
    for sc in cases:
        g = owner.get(sc.id) if sc.max_batch is None else None  # a search is never timed
        if g is None:
            units.append(Unit([sc]))
            continue
        k = (g.name, g.setting(sc))
        if k not in by_ctx:
            by_ctx[k] = Unit([], g)
            units.append(by_ctx[k])
        by_ctx[k].items.append(sc)
    for u in by_ctx.values():
        refs = [i for i, sc in enumerate(u.items) if u.group and u.group.is_reference(sc)]
        u.ref = refs[0] if refs else None
    return units


def still_to_run(
    cases: list[SuiteCase], groups: list[CompareGroup] | None, done: set[str]
) -> tuple[list[SuiteCase], list[str]]:
    """The cases a resumed run measures, and a note per compare group it times whole again.

    A case is to run when its key is not ``done``; a compare group at one setting runs whole
    when any member is to run, since its ratios exist only between members timed together: a
    run directory holding some members (an older run, a hand-edited one) must not end with
    members that have no ratio to the reference. Their earlier rows are replaced when the
    group's rows land (:meth:`hilobench.run.runner.Runner`)."""
    todo: set[int] = set()
    notes = []
    for u in plan(cases, groups):
        missing = [sc for sc in u.items if sc.row_key not in done]
        if not missing:
            continue
        todo |= {id(sc) for sc in (u.items if u.group is not None else missing)}
        again = [sc.id for sc in u.items if sc.row_key in done]
        if u.group is not None and again:
            notes.append(
                f"compare {u.group.name}: {', '.join(again)} timed again with "
                f"{', '.join(sc.id for sc in missing)} (ratios exist only within one timing); "
                "their earlier rows are replaced"
            )
    return [sc for sc in cases if id(sc) in todo], notes


def select(cases: list[SuiteCase], patterns: str | None) -> list[SuiteCase]:
    """Cases whose id, name or label matches one of the comma-separated ``patterns``.

    A pattern with glob characters (``*?[``) must match a whole id or name; a plain word
    matches any part of the id, the name or the label.
    """
    if not patterns:
        return cases
    pats = [p.strip() for p in patterns.split(",") if p.strip()]

    def hit(sc: SuiteCase, pat: str) -> bool:
        if any(ch in pat for ch in "*?["):
            return fnmatch.fnmatchcase(sc.id, pat) or fnmatch.fnmatchcase(sc.case.name, pat)
        return pat in sc.id or pat in sc.case.name or pat in sc.case.label()

    return [sc for sc in cases if any(hit(sc, p) for p in pats)]
