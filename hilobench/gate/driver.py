"""The gate's driver: measure a base revision and the working tree interleaved, in one job.

Numbers measured on another machine or an hour ago carry that machine's and that hour's
noise, so the gate never uses stored timings. It checks REV out into a temporary worktree and
starts one worker per revision (:mod:`hilobench.gate.side_procs`), each running its revision's own
code on this Python and these libraries. Per case, the workers first count the case, then
take turns in blocks: in each block each side builds the case afresh and times it within its
share of the case's budget (:func:`hilobench.measure.timing.time_fn`, a cap), the side that
goes first alternating from block to block. Two builds of identical code can differ by a few
percent for as long as they live (memory placement), more than the samples of one build
differ, so builds are the independent units, and turns a fraction of a second apart make
drift hit both sides alike. :mod:`hilobench.gate.judge` then judges the rows; a borderline
case is measured again by a fresh pair of workers.

The budget of a case (both sides together) is ``--budget``, else the suite's ``gate:
budget``, else the case's own ``budget``. It is a cap, with one exception: a case always gets
the blocks its judge needs (``max(MIN_BLOCKS, min_samples)``), each at least one warm-up call
and one sample per side, because fewer could not be judged at all.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hilobench.core.case import Case, check_budget
from hilobench.core.fileio import write_text_atomic
from hilobench.core.row import CI_MIN_SAMPLES
from hilobench.gate.claims import Claim
from hilobench.gate.gate_errors import GateError
from hilobench.gate.judge import judge_runs
from hilobench.gate.policy import GateCase, SpeedPolicy, gate_cases, policies_of
from hilobench.gate.side_procs import Side, SideProcess, TurnError
from hilobench.gate.side_worker import SLOWDOWN_ENV
from hilobench.gate.speed import Timings
from hilobench.gate.stored_runs import JudgedRun
from hilobench.gate.verdict import Verdict
from hilobench.gate.worktree import checkout, repo_root
from hilobench.measure import stats
from hilobench.run.engine import base_row
from hilobench.store.writer import RunDir
from hilobench.suite.loader import load_suite

#: Blocks a case gets even when its budget is smaller (the judge needs >= 9 builds a side),
#: the number its budget is sized for, and the most it gets however large its budget.
MIN_BLOCKS = 9
TARGET_BLOCKS = 20
MAX_BLOCKS = 200
#: Longest time one side spends timing in one block: more blocks beat longer ones.
MAX_SIDE_S = 0.1

SIDES = ("base", "candidate")
Row = dict[str, Any]
SideOpener = Callable[[Sequence[Case], bool], dict[str, Side]]
"""Starts both sides for these cases (``count``: also count them): ``{"base", "candidate"}``."""


@dataclass
class PairOutcome:
    """How measuring one case on both sides went (the rows come from the sides)."""

    blocks: int = 0
    error: str | None = None  # the block phase failed: both rows say so
    base_config: bool = False  # the base's code cannot build the case


@dataclass
class Measured:
    """One measurement of some cases on both sides: each side's rows (job order), its
    environment (fingerprint, id) and how each case went."""

    rows: dict[str, list[Row]]
    envs: dict[str, tuple[dict[str, Any], str]]
    outcomes: list[PairOutcome]


def single_thread_cpus(case: Case) -> list[int]:
    """CPUs to rotate a single-threaded case over (empty: leave placement to the OS).

    Each core of a shared or virtual machine has its own neighbours, so a process kept on one
    core can run a few percent slower or faster than one kept on another. Running both sides
    on the same core in each block, and moving on with the next block, gives both every core.
    """
    if case.threads != 1 or not hasattr(os, "sched_getaffinity"):
        return []
    cpus = sorted(os.sched_getaffinity(0))
    return cpus if len(cpus) > 1 else []


def _fatal(sides: Mapping[str, Side], e: TurnError) -> None:
    for s in sides.values():
        if not s.alive():
            raise GateError(f"the {s.role} worker died: {e}", s.side) from None


def measure_pair(
    sides: Mapping[str, Side],
    index: int,
    case: Case,
    *,
    budget_s: float,
    min_blocks: int = MIN_BLOCKS,
    count: bool = True,
) -> PairOutcome:
    """Count case ``index`` on both sides, then time it in blocks, turn by turn, until its
    budget is spent (at least ``min_blocks``, at most :data:`MAX_BLOCKS`)."""
    out = PairOutcome()
    if count:  # both at once: nothing is timed while they count
        failed = False
        for name in SIDES:
            sides[name].send({"turn": "count", "case": index})
        for name in SIDES:
            try:
                failed |= sides[name].receive()["status"] != "ok"
            except TurnError as e:
                _fatal(sides, e)
                failed = True
                out.base_config |= name == "base" and e.config
        if failed:
            return out
    cpus = single_thread_cpus(case)
    deadline = time.perf_counter() + budget_s
    granted = 0.0  # timing budget handed out so far: never more than the case's
    while out.blocks < MAX_BLOCKS:
        start = time.perf_counter()
        todo = max(TARGET_BLOCKS - out.blocks, 1)
        left = max(0.0, min(deadline - start, budget_s - granted))
        side_s = min(MAX_SIDE_S, left / (2 * todo))
        granted += 2 * side_s
        turn = {
            "turn": "block",
            "case": index,
            "block": out.blocks,
            "budget_s": side_s,
            "cpu": cpus[out.blocks % len(cpus)] if cpus else None,
        }
        order = SIDES if out.blocks % 2 == 0 else SIDES[::-1]
        try:
            for name in order:
                sides[name].turn(turn)
        except TurnError as e:
            _fatal(sides, e)
            out.error = str(e)
            return out
        out.blocks += 1
        now = time.perf_counter()
        if out.blocks >= min_blocks and now + (now - start) > deadline:  # next would overrun
            break
    return out


def pair_samples(base: Row, cand: Row) -> list[int]:
    """Keep, in each block, as many samples of each side as the other side has (the budget
    may give one side a sample more), so sample *i* of both sides comes from one block.
    Returns the blocks of the samples kept."""
    kept: dict[str, list[float]] = {"b": [], "c": []}
    blocks: list[int] = []
    sb, bb = base.get("samples_s") or [], base.get("sample_blocks") or []
    sc, bc = cand.get("samples_s") or [], cand.get("sample_blocks") or []
    for block in dict.fromkeys(bb):
        xb = [s for s, k in zip(sb, bb, strict=True) if k == block]
        xc = [s for s, k in zip(sc, bc, strict=True) if k == block]
        n = min(len(xb), len(xc))
        kept["b"] += xb[:n]
        kept["c"] += xc[:n]
        blocks += [block] * n
    for row, samples in ((base, kept["b"]), (cand, kept["c"])):
        row["samples_s"], row["sample_blocks"] = samples, list(blocks)
    return blocks


def finish_row(
    row: Row, case: Case, outcome: PairOutcome, *, case_id: str, round_group: str, env_id: str
) -> Row:
    """A complete row (schema as run_case writes it) from one side's rows and the pairing."""
    row = dict(row) if row.get("case") else {**base_row(case), **row}
    row.update(case_key=case.key, env_id=env_id, round_group=round_group, case_id=case_id)
    calls = row.pop("block_calls", None)
    if outcome.error and row.get("status", "ok") == "ok":
        row["status"] = "error"
        row["message"] = outcome.error[:300]
    if row.get("status") != "ok":
        return row
    row["samples_s"] = row.get("samples_s") or []
    row["blocks"] = outcome.blocks
    if calls:
        row["calls_per_sample"] = int(statistics.median_low(calls))
    if row["samples_s"]:
        row.update(stats.summarize(row["samples_s"], case.batch))
    if len(row["samples_s"]) < CI_MIN_SAMPLES:  # measured, too thinly for an interval
        row["status"] = "few-samples"
        row["message"] = f"{len(row['samples_s'])} sample(s) in {outcome.blocks} block(s)"
    return row


def run_pair(
    open_sides: SideOpener,
    cases: Sequence[GateCase],
    *,
    budget_s: float | None = None,
    claims: Sequence[Mapping[str, Any] | Claim] = (),
    out_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    base_label: str = "base",
    cand_label: str = "candidate",
    count: bool = True,
) -> Verdict:
    """Measure every case on both sides, interleaved, then judge them (re-measuring borderline
    cases afresh). ``budget_s``: seconds per case for both sides (None: each case's own)."""
    group = uuid.uuid4().hex[:12]
    by_key = {gc.case.key: gc for gc in cases}

    def budget_of(gc: GateCase) -> float:
        return budget_s if budget_s is not None else gc.case.budget

    def measure(todo: Sequence[GateCase], counted: bool) -> Measured:
        sides = open_sides([gc.case for gc in todo], counted)
        try:
            outcomes = []
            for i, gc in enumerate(todo):
                if progress and counted:
                    progress(f"[{i + 1}/{len(todo)}] {gc.case.label()}")
                min_blocks = max(MIN_BLOCKS, gc.policy.min_samples)
                outcomes.append(
                    measure_pair(
                        sides,
                        i,
                        gc.case,
                        budget_s=budget_of(gc),
                        min_blocks=min_blocks,
                        count=counted,
                    )
                )
            rows = {name: sides[name].finish() for name in SIDES}
            envs = {name: (sides[name].env, sides[name].env_id) for name in SIDES}
        finally:
            for s in sides.values():
                s.close()
        return Measured(rows, envs, outcomes)

    first = measure(cases, count)
    envs = first.envs
    rows: dict[str, dict[str, Row]] = {name: {} for name in SIDES}
    for i, gc in enumerate(cases):
        outcome = first.outcomes[i]
        pair_samples(first.rows["base"][i], first.rows["candidate"][i])
        for name in SIDES:
            row = finish_row(
                first.rows[name][i],
                gc.case,
                outcome,
                case_id=gc.id,
                round_group=f"{group}:{i + 1}",
                env_id=envs[name][1],
            )
            if name == "base" and outcome.base_config:
                row["status"] = "missing"  # the base code cannot build this case
            rows[name][gc.case.key] = row

    def remeasure(key: str) -> Timings | None:
        gc = by_key[key]
        if progress:
            progress(f"re-measuring borderline {gc.case.label()}")
        again = measure([gc], False)
        if again.outcomes[0].error or again.outcomes[0].blocks == 0:
            return None
        b, c = again.rows["base"][0], again.rows["candidate"][0]
        blocks = pair_samples(b, c)
        for name, row in (("base", b), ("candidate", c)):
            rows[name][key]["remeasure_samples_s"] = row["samples_s"]
            rows[name][key]["remeasure_sample_blocks"] = blocks
        return Timings(b["samples_s"], c["samples_s"], True, blocks)

    base_rows = {k: r for k, r in rows["base"].items() if r.get("status") != "missing"}
    verdict = judge_runs(
        JudgedRun(base_label, base_rows, *envs["base"]),
        JudgedRun(cand_label, rows["candidate"], *envs["candidate"]),
        policies=policies_of(cases, cases[0].policy if cases else SpeedPolicy()),
        claims=list(claims),
        remeasure=remeasure,
        same_job=True,
    )
    if out_dir is not None:
        kept = {"base": base_rows, "candidate": rows["candidate"]}
        for name in SIDES:
            run = RunDir(out_dir / name).create({**envs[name][0], "env_id": envs[name][1]})
            run.append_rows(list(kept[name].values()))
            run.write_tables()
        if claims:
            raw_claims = [c.raw if isinstance(c, Claim) else dict(c) for c in claims]
            write_text_atomic(out_dir / "candidate" / "claims.json", json.dumps(raw_claims) + "\n")
    return verdict


def process_sides(
    base_root: Path,
    cand_root: Path,
    base_role: str = "base",
    logs: Path | None = None,
    slowdown: str | None = None,
) -> SideOpener:
    """Opens a worker per revision: the base's in ``base_root``, the candidate's (with the
    test-only ``slowdown`` knob, if given) in ``cand_root``; both start up together."""

    def open_sides(cases: Sequence[Case], count: bool) -> dict[str, Side]:
        started: dict[str, SideProcess] = {}
        try:
            started["base"] = SideProcess(
                base_root,
                base_role,
                cases,
                count=count,
                log=logs / "base.log" if logs else None,
            )
            started["candidate"] = SideProcess(
                cand_root,
                "candidate",
                cases,
                side="candidate",
                count=count,
                log=logs / "candidate.log" if logs else None,
                slowdown=slowdown,
            )
            for s in started.values():
                s.wait_hello()
        except BaseException:
            for s in started.values():
                s.close()
            raise
        return dict(started)

    return open_sides


@dataclass
class GateOutcome:
    verdict: Verdict
    out_dir: Path
    wall_s: float
    base_commit: str = ""


def run_gate(
    base_rev: str,
    suite_path: Path | str,
    *,
    out_dir: Path,
    policy: SpeedPolicy | None = None,
    budget_s: float | None = None,
    repo: Path | str = ".",
    progress: Callable[[str], None] | None = None,
) -> GateOutcome:
    """Check out ``base_rev``, start a worker on it and one on the working tree, measure the
    suite interleaved and judge it. Raises GateError when a side cannot be measured."""
    t0 = time.perf_counter()
    suite = load_suite(suite_path)
    cases = gate_cases(suite, policy or SpeedPolicy())
    if budget_s is None and suite.gate.get("budget") is not None:
        budget_s = float(suite.gate["budget"])
    if budget_s is not None:
        budget_s = check_budget(budget_s, "gate budget")
    root = repo_root(repo)
    with checkout(root, base_rev) as (base_path, commit):
        out_dir.mkdir(parents=True, exist_ok=True)
        if progress:
            progress(f"base {base_rev} = {commit[:12]}; candidate = working tree {root}")
        verdict = run_pair(
            process_sides(
                base_path, root, f"base ({base_rev})", out_dir, os.environ.get(SLOWDOWN_ENV)
            ),
            cases,
            budget_s=budget_s,
            claims=suite.claims,
            out_dir=out_dir,
            progress=progress,
            base_label=f"{base_rev} ({commit[:12]})",
            cand_label="working tree",
        )
    wall = time.perf_counter() - t0
    budgets = sorted({budget_s if budget_s is not None else gc.case.budget for gc in cases})
    each = "-".join(f"{b:g}" for b in dict.fromkeys(budgets[:1] + budgets[-1:]))
    verdict.notes.append(
        f"measured interleaved in one job on this machine; {len(cases)} case(s), "
        f"{each} s of sampling each, gate wall time {wall:.0f} s"
    )
    return GateOutcome(verdict, out_dir, wall, commit)
