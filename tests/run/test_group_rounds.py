"""A compare group keeps its rounds: progress by round, a record rewritten after each round,
rows marked partial on a stop, and ``--resume`` that continues the stored rounds (or times a
group whole again) with every case once in the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hilobench.cli.app import main
from hilobench.core.case import Case
from hilobench.core.plan import CompareGroup, SuiteCase, still_to_run
from hilobench.core.row import is_measured
from hilobench.measure.timing import RoundDone, Rounds, time_interleaved
from hilobench.run import rounds as group_rounds
from hilobench.run.progress import round_text
from hilobench.store.writer import load_rows

ROOT = Path(__file__).resolve().parents[2]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def suite(tmp: Path, budget: float) -> Path:
    p = tmp / "g.yaml"
    p.write_text(
        "name: g\ndefaults:\n  device: cpu\n  batch: 1\n  dim: 32\n  heads: 2\n  tokens: 7x7\n"
        f"  budget: {budget}\ncases:\n  - layer: [msa, hilo, sra]\n"
        "compare: {name: trio, members: all, reference: msa}\n"
    )
    return p


def test_interleaved_rounds_are_reported_and_continue() -> None:
    seen: list[RoundDone] = []
    fns = {"a": lambda: time.sleep(0.001), "b": lambda: time.sleep(0.002)}
    first = time_interleaved(fns, budget_s=0.2, min_rounds=3, min_warmup=1,
                             on_round=seen.append)  # fmt: skip
    n = len(first["a"].samples_s)
    assert [d.rounds.n for d in seen] == list(range(1, n + 1))
    assert all(d.expected >= d.rounds.n and d.eta_s >= 0 for d in seen)
    assert seen[-1].timings["b"].samples_s == first["b"].samples_s
    stored = Rounds({k: list(v.samples_s[:2]) for k, v in first.items()},
                    {k: list(v.order[:2]) for k, v in first.items()},
                    {k: v.calls_per_sample for k, v in first.items()}, 0.05)  # fmt: skip
    more = time_interleaved(fns, budget_s=0.2, min_rounds=5, min_warmup=1, resume=stored)
    for k in fns:  # the stored rounds come first, the rotation goes on, the calls stay
        assert more[k].samples_s[:2] == stored.samples[k] and len(more[k].samples_s) >= 5
        assert more[k].calls_per_sample == stored.calls[k]
    assert more["a"].order[2] == 0 and more["b"].order[2] == 1  # round 3 starts with a


def test_replace_rows_and_continuation(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"case_key": "x", "status": "ok"}\n{"case_key": "a", "status": "partial"}\n')
    assert not group_rounds.replace_rows(rows, {"zzz"}, [{"case_key": "zzz"}])
    assert group_rounds.replace_rows(rows, {"a", "b"}, [{"case_key": "a"}, {"case_key": "b"}])
    assert [json.loads(x)["case_key"] for x in rows.read_text().splitlines()] == ["x", "a", "b"]
    stamp = {"env_id": "e", "git_commit": "c"}
    rounds = {"samples": {"a": [1.0], "b": [2.0]}, "order": {"a": [0], "b": [1]},
              "calls": {"a": 1, "b": 1}, "elapsed_s": 0.5}  # fmt: skip
    rec = group_rounds.make_record(group="g", keys=["a", "b"], stamp=stamp, rounds=rounds,
                                   expected=9, eta_s=1.0, rows=[])  # fmt: skip
    assert group_rounds.continuation(rec, ["a", "b"], ["a", "b"], stamp) == rounds
    assert group_rounds.continuation(rec, ["a", "b"], ["a"], stamp) is None  # b failed now
    assert group_rounds.continuation(rec, ["b", "a"], ["a", "b"], stamp) is None
    assert (
        group_rounds.continuation(rec, ["a", "b"], ["a", "b"], {**stamp, "git_commit": "d"}) is None
    )
    path = group_rounds.record_path(tmp_path, ["a", "b"])
    group_rounds.write_record(path, rec)
    # a stop after a few rounds: rows that read few-samples are partial too (resume finishes them)
    few = [{"status": "few-samples", "samples_s": [1.0]}, {"status": "error", "samples_s": []}]
    group_rounds.mark_partial(few, "g", 1)
    assert [r["status"] for r in few] == ["partial", "error"]
    assert "stopped after 1 round(s)" in few[0]["message"]
    assert group_rounds.read_record(path) == rec and not list(path.parent.glob("*.part"))
    path.write_text("{torn")
    assert group_rounds.read_record(path) is None


def test_a_group_holding_some_members_is_timed_whole() -> None:
    cases = [SuiteCase(Case("layer", n, res=(224, 224)), n) for n in ("msa", "hilo", "sra")]
    cases.append(SuiteCase(Case("layer", "wmsa", res=(224, 224)), "wmsa"))
    group = CompareGroup("trio", ("msa", "hilo", "sra"), "msa")
    keys = {sc.id: sc.case.key for sc in cases}
    todo, notes = still_to_run(cases, [group], {keys["msa"], keys["hilo"], keys["wmsa"]})
    assert [sc.id for sc in todo] == ["msa", "hilo", "sra"]
    assert len(notes) == 1 and "msa, hilo timed again with sra" in notes[0]
    todo, notes = still_to_run(cases, [group], {keys["msa"], keys["hilo"], keys["sra"]})
    assert [sc.id for sc in todo] == ["wmsa"] and not notes


def test_round_text() -> None:
    from hilobench.core.plan import Unit

    unit = Unit([SuiteCase(Case("layer", "msa", res=(224, 224)), "msa")],
                CompareGroup("trio", ("msa",), "msa"))  # fmt: skip
    assert round_text(unit, 7, 22, 14.2) == "compare trio: round 7/22, ETA 14 s"
    assert round_text(unit, 30, 22, 0.0) == "compare trio: round 30/30, ETA 0 s"


def test_resume_times_again_a_group_the_run_holds_in_part(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s, out = suite(tmp_path, 0.1), tmp_path / "run"
    args = ["suite", "run", str(s), "--no-isolate", "--no-roofline", "--out", str(out)]
    assert run_cli(args, capsys)[0] == 0
    rows = (out / "rows.jsonl").read_text().splitlines()
    (out / "rows.jsonl").write_text("\n".join(r for r in rows if '"sra"' not in r) + "\n")
    code, _, err = run_cli([*args, "--resume"], capsys)
    assert code == 0 and "timed again" in err
    got = load_rows(out)
    assert sorted(r["case_id"] for r in got) == ["hilo", "msa", "sra"]
    # measured (a loaded machine may fit fewer than 6 rounds in the budget), each with its ratio
    assert all(is_measured(r) and r["ratio_to_ref"] is not None for r in got)


@pytest.mark.timeout(600)
def test_ctrl_c_inside_a_group_keeps_its_rounds_and_resume_finishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 3 members x 4 s of rounds: the group is still timing when the first round is recorded,
    # however loaded the machine (a loaded machine only makes the rounds slower)
    s, out = suite(tmp_path, 4.0), tmp_path / "run"
    cmd = [sys.executable, "-m", "hilobench", "suite", "run", str(s), "--out", str(out),
           "--no-roofline"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        rec = None
        while rec is None or rec["n"] < 1:
            assert proc.poll() is None, "the run ended before its group was stopped"
            assert time.monotonic() < deadline, "no round was recorded"
            time.sleep(0.05)
            found = list((out / group_rounds.PARTIAL_DIR).glob("group-*.json"))
            rec = group_rounds.read_record(found[0]) if found else None
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "3 partial" in stderr and f"--resume --out {out}" in stderr
    kept = load_rows(out)
    assert sorted(r["case_id"] for r in kept) == ["hilo", "msa", "sra"]
    n = kept[0]["n_samples"]
    assert n >= 1 and all(r["status"] == "partial" and r["n_samples"] == n for r in kept)
    assert all(f"after {n} round(s)" in r["message"] for r in kept)
    code, _, err = run_cli([*cmd[3:], "--resume"], capsys)
    assert code == 0, err
    assert f"continuing from {n} stored round(s)" in err
    done = {r["case_id"]: r for r in load_rows(out)}
    assert sorted(done) == ["hilo", "msa", "sra"] and len(load_rows(out)) == 3  # once each
    for r in done.values():
        old = next(k for k in kept if k["case_id"] == r["case_id"])
        # at least one round more than stored (the budget left decides how many more)
        assert is_measured(r) and r["ratio_n"] > n and r["ratio_to_ref"] is not None
        assert r["samples_s"][:n] == old["samples_s"]  # the stored rounds, continued
    assert not (out / group_rounds.PARTIAL_DIR).exists()  # record and temporary files gone
