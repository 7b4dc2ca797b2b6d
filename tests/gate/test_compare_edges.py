"""`compare` beyond pass and fail: cases too thin to judge get their own exit code (4, not the
baseline's 3), cases one side lacks are listed, and a run measured in one process beside one
measured a process per case is pointed out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hilobench.gate.judge import judge_runs
from hilobench.gate.stored_runs import load_run
from hilobench.gate.verdict import EXIT_BASELINE, EXIT_PASS, EXIT_UNJUDGED

DATA = Path(__file__).resolve().parents[1] / "data" / "gate" / "null"


def copy(side: str, tmp_path: Path) -> Path:
    dst = tmp_path / side
    shutil.copytree(DATA / side, dst)
    return dst


def edit(path: Path, fn) -> None:  # type: ignore[no-untyped-def]
    rows = [json.loads(x) for x in (path / "rows.jsonl").read_text().splitlines() if x]
    rows = [r for r in (fn(r) for r in rows) if r is not None]
    (path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def thin(row: dict) -> dict:
    """One case cut to 4 samples in 2 blocks: too few for the rank test."""
    if row["name"] == "hilo":
        row.update(samples_s=row["samples_s"][:4], sample_blocks=[0, 0, 1, 1], blocks=2,
                   n_samples=4)  # fmt: skip
    return row


def test_too_few_samples_exit_4_not_3(cli, tmp_path: Path) -> None:
    base, cand = copy("base", tmp_path), copy("candidate", tmp_path)
    edit(base, thin)
    edit(cand, thin)
    md = tmp_path / "c.md"
    code, _, err = cli(["compare", str(base), str(cand), "--markdown", str(md)])
    assert code == EXIT_UNJUDGED == 4, err
    assert "UNJUDGED" in md.read_text() and "unjudged" in md.read_text()
    rep = judge_runs(load_run(base), load_run(cand, role="candidate"))
    assert rep.count("unjudged") == 1 and rep.exit_code == EXIT_UNJUDGED
    # a case the baseline lacks outranks too few samples: 3
    edit(base, lambda r: None if r["name"] == "msa" else r)
    assert judge_runs(load_run(base), load_run(cand, role="candidate")).exit_code == EXIT_BASELINE


def test_cases_only_in_the_baseline_are_listed(cli, tmp_path: Path) -> None:
    cand = copy("candidate", tmp_path)
    edit(cand, lambda r: None if r["name"] in ("sra", "wmsa") else r)
    js = tmp_path / "v.json"
    code, _, err = cli(["compare", str(DATA / "base"), str(cand), "--json", str(js)])
    assert code == EXIT_PASS, err
    v = json.loads(js.read_text())
    assert len(v["base_only"]) == 2 and all("sra" in x or "wmsa" in x for x in v["base_only"])
    assert "2 case(s) only in the baseline" in err and "2 only in baseline" in v["headline"]
    assert len(v["cases"]) == 2


def test_isolated_beside_in_process_is_noted(cli, tmp_path: Path) -> None:
    base, cand = copy("base", tmp_path), copy("candidate", tmp_path)
    edit(base, lambda r: dict(r, isolated=True))
    edit(cand, lambda r: dict(r, isolated=False))
    code, _, err = cli(["compare", str(base), str(cand)])
    assert code == EXIT_PASS
    assert "base measured isolated" in err and "candidate in-process" in err
    edit(cand, lambda r: dict(r, isolated=True))
    code, _, err = cli(["compare", str(base), str(cand)])
    assert code == EXIT_PASS and "in-process" not in err


def test_partial_rows_are_unjudged_not_regressions(cli, tmp_path: Path) -> None:
    base, cand = copy("base", tmp_path), copy("candidate", tmp_path)
    edit(cand, lambda r: dict(r, status="partial") if r["name"] == "hilo" else r)
    rep = judge_runs(load_run(base), load_run(cand, role="candidate"))
    (hilo,) = [c for c in rep.cases if c.label.startswith("hilo")]
    assert hilo.verdict == "unjudged" and "suite run --resume" in hilo.notes[0]
    assert rep.count("regression") == 0 and rep.exit_code == EXIT_UNJUDGED
