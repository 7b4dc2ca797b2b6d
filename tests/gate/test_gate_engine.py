"""The gate measures through the one engine: every timed sample comes from
``measure.timing.time_fn`` with a strict budget, a case's own budget caps its measurement, and
a base revision whose worker predates the gate job is refused with exit 3."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from hilobench.core.case import Case
from hilobench.gate.driver import MIN_BLOCKS, measure_pair, run_pair
from hilobench.gate.policy import GateCase, SpeedPolicy
from hilobench.gate.side_procs import InProcessSide, Side
from hilobench.measure import timing
from hilobench.run.engine import MIN_SAMPLE_S
from tests.gitrepo import commit_all, copy_package, git

TINY = (("dim", 32), ("heads", 2))


def tiny(name: str = "msa", budget: float = 5.0) -> Case:
    return Case("layer", name, res=(64, 64), batch=1, threads=1, options=TINY, budget=budget)


def in_process(cases: Sequence[Case], count: bool) -> dict[str, Side]:
    """Both sides in this process: the engine is exercised without starting workers."""
    return {
        "base": InProcessSide(cases, "base", count=count),
        "candidate": InProcessSide(cases, "candidate", side="candidate", count=count),
    }


def test_every_sample_comes_from_time_fn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No second timing loop: the rows hold exactly what ``time_fn`` returned (per layer),
    each block asked it for a strict budget, and together they stay within the case budget."""
    calls: list[dict[str, Any]] = []
    returned: list[float] = []
    real = timing.time_fn

    def spy(fn: Any, **kwargs: Any) -> timing.Timing:
        tm = real(fn, **kwargs)
        calls.append(kwargs)
        returned.extend(tm.samples_s)
        return tm

    monkeypatch.setattr(timing, "time_fn", spy)
    case = tiny(budget=0.6)
    verdict = run_pair(
        in_process,
        [GateCase(case, "msa", SpeedPolicy(min_effect=5))],
        out_dir=tmp_path,
        count=False,
    )
    assert verdict.exit_code == 0, verdict.headline
    rows = {
        side: json.loads((tmp_path / side / "rows.jsonl").read_text().splitlines()[0])
        for side in ("base", "candidate")
    }
    blocks = rows["base"]["blocks"]
    assert blocks >= MIN_BLOCKS and len(calls) == 2 * blocks
    assert all(c["strict_budget"] and c["min_sample_s"] == MIN_SAMPLE_S for c in calls)
    assert sum(c["budget_s"] for c in calls) <= case.budget + 1e-9
    for row in rows.values():
        assert row["samples_s"] and set(row["samples_s"]) <= set(returned)
        assert len(row["samples_s"]) == len(row["sample_blocks"])


def test_every_number_the_gate_reports_is_time_fns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No timing loop, median or sample length of the gate's own: with a ``time_fn`` that makes
    its samples up (each one new), the rows hold exactly those samples and the verdict's
    medians are theirs."""
    made: list[float] = []

    def fake(fn: Any, **kwargs: Any) -> timing.Timing:
        fn()
        made.append(1e-3 * (1 + len(made) / 1000))
        return timing.Timing([made[-1]], 1, 0, 0.0, kwargs["budget_s"])

    monkeypatch.setattr(timing, "time_fn", fake)
    verdict = run_pair(
        in_process,
        [GateCase(tiny(budget=0.6), "msa", SpeedPolicy(min_effect=5))],
        out_dir=tmp_path,
        count=False,
    )
    rows = {
        side: json.loads((tmp_path / side / "rows.jsonl").read_text().splitlines()[0])
        for side in ("base", "candidate")
    }
    assert sorted(rows["base"]["samples_s"] + rows["candidate"]["samples_s"]) == made
    speed = verdict.cases[0].speed
    assert speed is not None
    assert speed.base_median_s == pytest.approx(statistics.median(rows["base"]["samples_s"]))
    assert speed.cand_median_s == pytest.approx(statistics.median(rows["candidate"]["samples_s"]))


@pytest.mark.parametrize("budget", [0.6, 1.5])
def test_case_budget_caps_the_measurement(budget: float) -> None:
    """A case's budget bounds its interleaved measurement (plus the overhead of its last
    block) and is spent, not replaced by a fixed number of blocks."""
    case = tiny(budget=budget)
    sides = in_process([case], count=False)
    try:
        start = time.perf_counter()
        out = measure_pair(sides, 0, case, budget_s=case.budget, count=False)
        wall = time.perf_counter() - start
    finally:
        for s in sides.values():
            s.close()
    assert out.error is None and out.blocks >= MIN_BLOCKS
    assert 0.6 * budget <= wall <= budget + 0.4, wall


# --- a base revision whose code predates the gate job ---------------------------------------

SUITE = """\
name: tiny
defaults: {batch: 1, dim: 32, heads: 2, threads: 1, budget: 0.2}
cases:
  - layer: msa
    res: 64
"""


def test_base_without_the_gate_job_exit_3(tmp_path: Path, cli, monkeypatch) -> None:
    """The base's worker does not know the job (older code), or speaks another protocol:
    exit 3, the worktree removed, the candidate's worker not left behind."""
    root = tmp_path / "repo"
    copy_package(root, SUITE)
    worker = root / "hilobench" / "run" / "jobs.py"
    current = worker.read_text()
    old = "(CaseJob, GroupJob, PeakJob, FreeJob, GateJob)"
    assert old in current  # the job table this test edits
    worker.write_text(current.replace(old, "(CaseJob, GroupJob, PeakJob, FreeJob)"))
    side = root / "hilobench" / "gate" / "side_worker.py"
    current_side = side.read_text()
    commit_all(root, "no gate job")
    worker.write_text(current)
    side.write_text(current_side.replace("PROTOCOL = 2", "PROTOCOL = 1"))
    git(root, "commit", "-qam", "gate protocol 1")
    side.write_text(current_side)  # the working tree: this code
    monkeypatch.chdir(root)
    monkeypatch.delenv("HILOBENCH_TEST_SLOWDOWN", raising=False)
    code, out, err = cli(["gate", "--base", "HEAD~1", "--suite", "tiny.yaml", "--out", "o1"])
    assert code == 3 and out == "", err
    assert "does not run the hilobench gate job" in err and "too old" in err
    code, _, err = cli(["gate", "--base", "HEAD", "--suite", "tiny.yaml", "--out", "o2"])
    assert code == 3 and "speaks gate protocol 1" in err
    assert git(root, "worktree", "list").count("\n") == 1
