"""The regression gate's decisions on recorded data: every exit code, environments,
deterministic mismatches, a clear slowdown, plain noise, borderlines and claims.

tests/data/gate holds two recorded gate runs of the ci_smoke layers on a 2-core machine:
``null`` (the same code on both sides) and ``slow`` (the candidate's hilo padded to 1.25x its
time with the test-only slowdown knob). Nothing here measures, so the verdicts are fixed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hilobench.core.errors import ConfigError
from hilobench.gate.baseline import BASELINE_KIND, BASELINE_SCHEMA
from hilobench.gate.claims import check_claims
from hilobench.gate.comment import verdict_markdown
from hilobench.gate.judge import judge_case, judge_runs
from hilobench.gate.policy import DETERMINISTIC, SpeedPolicy
from hilobench.gate.speed import Timings, judge_speed
from hilobench.gate.stored_runs import JudgedRun, load_run

DATA = Path(__file__).resolve().parents[1] / "data" / "gate"
POLICY = SpeedPolicy()


def copy_run(name: str, side: str, tmp_path: Path) -> Path:
    dst = tmp_path / f"{name}-{side}"
    shutil.copytree(DATA / name / side, dst)
    return dst


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "rows.jsonl").read_text().splitlines() if line]


def write_rows(path: Path, rows: list[dict]) -> None:
    (path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def one_line_error(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.startswith("hilobench: error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# --- speed decisions on synthetic, seeded samples ---------------------------------------------


def blocked(rng: np.random.Generator, factor: float, n_blocks: int = 30, per_block: int = 2):
    """Timings shaped like the gate's: per-build offsets (memory placement) plus sample noise."""
    build_b = rng.normal(0, 0.03, n_blocks)
    build_c = rng.normal(0, 0.03, n_blocks)
    base, cand, blocks = [], [], []
    for b in range(n_blocks):
        for _ in range(per_block):
            base.append(1e-3 * np.exp(build_b[b] + rng.normal(0, 0.01)))
            cand.append(1e-3 * factor * np.exp(build_c[b] + rng.normal(0, 0.01)))
            blocks.append(b)
    return Timings(base, cand, True, blocks)


def test_clear_slowdown_is_a_regression() -> None:
    res = judge_speed(blocked(np.random.default_rng(1), 1.25), POLICY)
    assert res.verdict == "regression"
    assert res.unit == "builds" and res.n_base == 30
    assert 0.15 < res.change < 0.35 and res.p_value < 1e-4
    assert res.ci[0] < res.change < res.ci[1]


@pytest.mark.parametrize("seed", range(5))
def test_noise_passes(seed: int) -> None:
    res = judge_speed(blocked(np.random.default_rng(seed), 1.0), POLICY)
    assert res.verdict == "pass", res


def test_improvement_is_reported_not_failed() -> None:
    res = judge_speed(blocked(np.random.default_rng(2), 0.7), POLICY)
    assert res.verdict == "improved"


def test_small_significant_slowdown_is_borderline_then_confirmed_or_cleared() -> None:
    rng = np.random.default_rng(3)
    t = blocked(rng, 1.07, n_blocks=60)
    first = judge_speed(t, POLICY)
    assert first.verdict == "borderline" and "below the minimum effect" in first.note
    again = judge_speed(blocked(rng, 1.07, n_blocks=60), POLICY, confirming=True)
    assert again.verdict == "regression"
    cleared = judge_speed(blocked(rng, 1.0, n_blocks=60), POLICY, confirming=True)
    assert cleared.verdict == "pass" and "cleared" in cleared.note


def test_min_effect_is_configurable() -> None:
    t = blocked(np.random.default_rng(4), 1.25)
    assert judge_speed(t, POLICY.with_overrides({"min_effect": 0.6})).verdict == "pass"
    assert judge_speed(t, POLICY.with_overrides({"min_effect": 0.4})).verdict == "borderline"


def test_too_few_samples_are_unjudged() -> None:
    t = Timings([1.0] * 8, [1.0] * 8)
    res = judge_speed(t, POLICY)
    assert res.verdict == "unjudged" and "9" in res.note


def test_unpaired_samples_use_ratio_of_medians_and_rank_test() -> None:
    rng = np.random.default_rng(5)
    base = list(1e-3 * np.exp(rng.normal(0, 0.02, 30)))
    cand = list(1.3e-3 * np.exp(rng.normal(0, 0.02, 30)))
    res = judge_speed(Timings(base, cand), POLICY)
    assert res.verdict == "regression" and res.unit == "samples" and not res.paired
    assert res.ci[0] < res.change < res.ci[1]


def test_bad_policy_values_are_config_errors() -> None:
    from hilobench.core.errors import ConfigError

    with pytest.raises(ConfigError, match="min_effect"):
        SpeedPolicy(min_effect=0)
    with pytest.raises(ConfigError, match="min_samples"):
        SpeedPolicy(min_samples=3)
    with pytest.raises(ConfigError, match="unknown gate setting"):
        POLICY.with_overrides({"min_efect": 0.2})


def test_borderline_is_remeasured_once_through_the_callback() -> None:
    rng = np.random.default_rng(6)
    t = blocked(rng, 1.07, n_blocks=60)
    base = {"status": "ok", "samples_s": list(t.base), "round_group": "g", "params": 1}
    cand = {"status": "ok", "samples_s": list(t.cand), "round_group": "g", "params": 1}
    base["sample_blocks"] = cand["sample_blocks"] = list(t.blocks)
    calls: list[str] = []

    def remeasure(key: str) -> Timings:
        calls.append(key)
        return blocked(rng, 1.0, n_blocks=60)

    res = judge_case("k", base, cand, POLICY, remeasure=remeasure)
    assert calls == ["k"]
    assert res.verdict == "pass" and res.speed.first.verdict == "borderline"
    stored = judge_case("k", base, cand, POLICY)
    assert stored.verdict == "borderline" and "not re-measured" in stored.speed.note


# --- compare on recorded run directories ----------------------------------------------------


def test_noise_passes_exit_0(cli, tmp_path: Path) -> None:
    md = tmp_path / "comment.md"
    code, out, err = cli(
        ["compare", str(DATA / "null" / "base"), str(DATA / "null" / "candidate"),
         "--markdown", str(md)]
    )  # fmt: skip
    assert code == 0, out + err
    text = md.read_text()
    assert text.startswith("### hilobench compare: PASS")
    assert "| case |" in text and "hilo" in text


def test_clear_slowdown_fails_exit_1(cli, tmp_path: Path) -> None:
    md = tmp_path / "comment.md"
    jf = tmp_path / "report.json"
    code, out, _ = cli(
        ["compare", str(DATA / "slow" / "base"), str(DATA / "slow" / "candidate"),
         "--markdown", str(md), "--json", str(jf)]
    )  # fmt: skip
    assert code == 1
    report = json.loads(jf.read_text())
    verdicts = {c["label"].split("/")[0]: c["verdict"] for c in report["cases"]}
    assert verdicts["hilo"] == "regression"
    assert all(v == "pass" for k, v in verdicts.items() if k != "hilo"), verdicts
    hilo = next(c for c in report["cases"] if c["label"].startswith("hilo"))
    assert 0.15 < hilo["speed"]["change"] < 0.35
    assert "FAIL" in md.read_text().splitlines()[0]
    assert "regression" in out


def test_one_param_more_fails(cli, tmp_path: Path) -> None:
    cand = copy_run("null", "candidate", tmp_path)
    rows = rows_of(cand)
    rows[0]["params"] += 1
    write_rows(cand, rows)
    md = tmp_path / "c.md"
    code, _, _ = cli(["compare", str(DATA / "null" / "base"), str(cand), "--markdown", str(md)])
    assert code == 1
    assert "params" in md.read_text() and "(+1)" in md.read_text()


def test_peak_tensor_bytes_must_match(tmp_path: Path) -> None:
    cand = copy_run("null", "candidate", tmp_path)
    rows = rows_of(cand)
    rows[1]["peak_mem_bytes"] -= 4
    write_rows(cand, rows)
    rep = judge_runs(load_run(DATA / "null" / "base"), load_run(cand, role="candidate"))
    bad = [c for c in rep.cases if c.mismatches]
    assert len(bad) == 1 and bad[0].mismatches[0].name == "peak_mem_bytes"
    assert rep.exit_code == 1


def test_environment_mismatch_is_refused_exit_3(cli, tmp_path: Path) -> None:
    cand = copy_run("null", "candidate", tmp_path)
    env = json.loads((cand / "env.json").read_text())
    env["cpu_model"] = "Some Other CPU"
    env.pop("env_id", None)
    (cand / "env.json").write_text(json.dumps(env))
    md = tmp_path / "c.md"
    code, _, err = cli(["compare", str(DATA / "null" / "base"), str(cand), "--markdown", str(md)])
    assert code == 3
    line = one_line_error(err)
    assert "environments differ" in line and "cpu_model" in line
    assert "--allow-env-mismatch" in line
    assert md.read_text().startswith("### hilobench compare: REFUSED")

    code, _, err = cli(
        ["compare", str(DATA / "null" / "base"), str(cand), "--allow-env-mismatch",
         "--markdown", str(md)]
    )  # fmt: skip
    assert code == 0
    assert "environment mismatch overridden" in md.read_text()
    assert "overridden" in err


def test_missing_base_dir_exit_3(cli, tmp_path: Path) -> None:
    code, out, err = cli(["compare", str(tmp_path / "nope"), str(DATA / "null" / "candidate")])
    assert code == 3 and out == ""
    assert "does not exist" in one_line_error(err)


def test_base_without_rows_exit_3(cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = cli(["compare", str(empty), str(DATA / "null" / "candidate")])
    assert code == 3 and "rows.jsonl" in one_line_error(err)
    (empty / "rows.jsonl").write_text("")
    code, _, err = cli(["compare", str(empty), str(DATA / "null" / "candidate")])
    assert code == 3 and "no rows" in one_line_error(err)


def test_schema_mismatch_exit_3(cli, tmp_path: Path) -> None:
    base = copy_run("null", "base", tmp_path)
    rows = rows_of(base)
    for r in rows:
        r["schema"] = 99
    write_rows(base, rows)
    code, _, err = cli(["compare", str(base), str(DATA / "null" / "candidate")])
    assert code == 3 and "schema" in one_line_error(err)


def test_case_missing_in_base_exit_3(cli, tmp_path: Path) -> None:
    base = copy_run("null", "base", tmp_path)
    write_rows(base, rows_of(base)[1:])
    md = tmp_path / "c.md"
    code, _, _ = cli(
        ["compare", str(base), str(DATA / "null" / "candidate"), "--markdown", str(md)]
    )
    assert code == 3
    assert "missing_base" in md.read_text() and "INCOMPLETE" in md.read_text()


def test_regression_outranks_a_gap(tmp_path: Path) -> None:
    base = copy_run("slow", "base", tmp_path)
    write_rows(base, [r for r in rows_of(base) if r["name"] != "msa"])
    rep = judge_runs(load_run(base), load_run(DATA / "slow" / "candidate", role="candidate"))
    assert rep.count("missing_base") == 1 and rep.exit_code == 1


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--borderline", "maybe"], "maybe"),
        (["--min-effect", "0"], "min_effect"),
        (["--alpha", "0.9"], "alpha"),
        (["--significance", "0.9"], "significance"),
        (["--significance", "0.05", "--alpha", "0.05"], "old spelling of --significance"),
        (["--nope"], "--nope"),
    ],
)
def test_usage_errors_exit_2(cli, args: list[str], needle: str) -> None:
    code, out, err = cli(
        ["compare", str(DATA / "null" / "base"), str(DATA / "null" / "candidate"), *args]
    )
    assert code == 2 and out == ""
    assert needle in one_line_error(err)


def test_old_alpha_spelling_is_significance_with_a_note(cli) -> None:
    """``--alpha`` of compare is the old spelling of ``--significance``: same verdict, plus one
    note line on stderr; the new spelling prints no note."""
    runs = [str(DATA / "null" / "base"), str(DATA / "null" / "candidate")]
    old = cli(["compare", *runs, "--alpha", "0.05"])
    new = cli(["compare", *runs, "--significance", "0.05"])
    assert old[0] == new[0] and old[1] == new[1]
    notes = [line for line in old[2].splitlines() if "now spelled --significance" in line]
    assert len(notes) == 1 and "--significance" not in new[2]


def test_missing_candidate_is_a_usage_error(cli, tmp_path: Path) -> None:
    code, _, err = cli(["compare", str(DATA / "null" / "base"), str(tmp_path / "nope")])
    assert code == 2 and "candidate" in one_line_error(err)


def test_deterministic_baseline_file_checks_counts_only(tmp_path: Path) -> None:
    rows = rows_of(DATA / "null" / "candidate")
    data = {
        "kind": BASELINE_KIND,
        "schema": BASELINE_SCHEMA,
        "cases": {
            r["case_key"]: {k: r[k] for k in DETERMINISTIC if r.get(k) is not None} for r in rows
        },
    }
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data))
    cand = load_run(DATA / "null" / "candidate", role="candidate")
    rep = judge_runs(load_run(path), cand)
    assert rep.exit_code == 0 and all(c.speed is None for c in rep.cases)
    first = next(iter(data["cases"]))
    data["cases"][first]["macs"] += 1
    path.write_text(json.dumps(data))
    assert judge_runs(load_run(path), cand).exit_code == 1


def test_stored_remeasurement_is_used(tmp_path: Path) -> None:
    """A stored borderline that the gate re-measured is judged on its re-measurement."""
    rng = np.random.default_rng(7)
    first, again = blocked(rng, 1.07, n_blocks=60), blocked(rng, 1.0, n_blocks=60)
    row = {"schema": 1, "case_key": "k", "status": "ok", "round_group": "g"}
    base = dict(row, samples_s=list(first.base), sample_blocks=list(first.blocks))
    cand = dict(row, samples_s=list(first.cand), sample_blocks=list(first.blocks))
    base.update(remeasure_samples_s=list(again.base), remeasure_sample_blocks=list(again.blocks))
    cand.update(remeasure_samples_s=list(again.cand), remeasure_sample_blocks=list(again.blocks))
    b = JudgedRun("b", {"k": base}, {"os": "x"}, "e")
    c = JudgedRun("c", {"k": cand}, {"os": "x"}, "e")
    rep = judge_runs(b, c)
    assert rep.cases[0].verdict == "pass" and rep.cases[0].speed.first is not None


# --- claims ---------------------------------------------------------------------------------


def claim_rows() -> list[dict]:
    return rows_of(DATA / "null" / "candidate")


def test_deterministic_claim_passes_exactly() -> None:
    (res,) = check_claims(
        claim_rows(), [{"a": "hilo", "b": "msa", "metric": "macs", "min_ratio": 1.3}]
    )
    assert res.status == "pass" and res.method == "exact" and res.ratio > 1.3
    (res,) = check_claims(
        claim_rows(), [{"a": "hilo", "b": "msa", "metric": "macs", "min_ratio": 100}]
    )
    assert res.status == "fail"


def test_speed_claim_reports_ratio_and_interval() -> None:
    rows = claim_rows()
    (res,) = check_claims(rows, [{"a": "hilo", "b": "msa", "min_ratio": 0.01}])
    assert res.status == "pass" and res.method == "bootstrap"
    assert res.ci[0] <= res.ratio <= res.ci[1]
    (res,) = check_claims(rows, [{"a": "hilo", "b": "msa", "min_ratio": 1000}])
    assert res.status == "fail"
    (res,) = check_claims(rows, [{"a": "hilo", "b": "msa", "max_ratio": 1000, "min_ratio": 0.01}])
    assert res.status == "pass"


def test_device_claim_is_not_applicable_elsewhere() -> None:
    """A CPU figure is no claim about a GPU: on GPU rows it is not applicable, not failed."""
    claim = {"a": "hilo", "b": "msa", "metric": "macs", "min_ratio": 100, "device": "cpu"}
    cpu_rows = [dict(r, device="cpu") for r in claim_rows()]
    gpu_rows = [dict(r, device="cuda:0") for r in claim_rows()]
    (res,) = check_claims(cpu_rows, [claim])
    assert res.status == "fail"
    (res,) = check_claims(gpu_rows, [claim])
    assert res.status == "not applicable"
    (res,) = check_claims(gpu_rows, [dict(claim, device="cuda")])
    assert res.status == "fail"
    with pytest.raises(ConfigError, match="tpu"):
        check_claims(cpu_rows, [dict(claim, device="tpu")])


def test_claim_at_the_edge_is_inconclusive_and_does_not_fail() -> None:
    rows = claim_rows()
    (probe,) = check_claims(rows, [{"a": "hilo", "b": "msa", "min_ratio": 0.01}])
    (res,) = check_claims(rows, [{"a": "hilo", "b": "msa", "min_ratio": probe.ratio}])
    assert res.status == "inconclusive"


def test_interleaved_rows_use_per_round_ratios() -> None:
    rng = np.random.default_rng(8)
    drift = np.exp(rng.normal(0, 0.2, 20))  # huge drift, shared by both in each round
    a = {"case_id": "a", "status": "ok", "batch": 4, "interleaved": True, "group": "g"}
    b = dict(a, case_id="b")
    a["samples_s"] = list(1e-3 * drift)
    b["samples_s"] = list(1.5e-3 * drift * np.exp(rng.normal(0, 0.01, 20)))
    (res,) = check_claims([a, b], [{"a": "a", "b": "b", "min_ratio": 1.4}])
    assert res.method == "per-round" and res.status == "pass"
    assert 1.45 < res.ratio < 1.55


def test_claims_pair_rows_at_the_same_setting_only() -> None:
    rows = claim_rows()
    other = dict(next(r for r in rows if r["name"] == "msa"))
    other["case"] = dict(other["case"], batch=64)
    res = check_claims([*rows, other], [{"a": "hilo", "b": "msa", "metric": "params",
                                          "min_ratio": 0.1}])  # fmt: skip
    assert len(res) == 1


def test_missing_claim_rows_and_bad_claims() -> None:
    from hilobench.core.errors import ConfigError

    (res,) = check_claims(claim_rows(), [{"a": "hilo", "b": "nope", "min_ratio": 1.0}])
    assert res.status == "missing"
    with pytest.raises(ConfigError, match="min_ratio"):
        check_claims([], [{"a": "hilo", "b": "msa"}])
    with pytest.raises(ConfigError, match="metric"):
        check_claims([], [{"a": "hilo", "b": "msa", "metric": "speed", "min_ratio": 1}])


def test_failed_claim_fails_compare(tmp_path: Path) -> None:
    base = load_run(DATA / "null" / "base")
    cand = load_run(DATA / "null" / "candidate", role="candidate")
    claims = [{"a": "hilo", "b": "msa", "metric": "macs", "min_ratio": 100}]
    rep = judge_runs(base, cand, claims=claims)
    assert rep.exit_code == 1 and "claim" in rep.headline
    md = verdict_markdown(rep)
    assert "| claim |" in md and "fail" in md


def test_compare_reads_claims_from_a_suite(cli, tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "cases:\n  - layer: [hilo, msa]\n"
        "claims:\n  - {a: hilo, b: msa, metric: macs, min_ratio: 100}\n"
    )
    code, out, _ = cli(
        ["compare", str(DATA / "null" / "base"), str(DATA / "null" / "candidate"),
         "--suite", str(suite)]
    )  # fmt: skip
    assert code == 1 and "claims" in out
