"""How often does the speed gate cry wolf, and how often does it catch a real slowdown?

Runs the gate's own measurement and decision (``hilobench.gate.driver.run_pair``: worker
processes, interleaved blocks, the judge, borderline re-measurement included) many times on
this machine:

- null: the working tree against itself (two workers running the same code): every
  regression verdict is a false alarm;
- slowdowns: the candidate worker pads every timed call of one attention (default ``hilo``)
  by 10% / 20% of its own duration (the test-only ``HILOBENCH_TEST_SLOWDOWN`` knob): every
  pass on a slowed case is a miss.

Conditions are interleaved repetition by repetition, so machine drift hits all of them. Each
repetition starts a fresh pair of workers and measures every case of the suite afresh, as a
gate run does. Prints per-case and per-gate-run rates with 95% Clopper-Pearson intervals, and
the gate's wall time per repetition.

    python benchmarks/gate_error_rates.py --suite suites/ci_smoke.yaml --minutes 15
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from scipy.stats import beta

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hilobench.core.case import Case  # noqa: E402
from hilobench.gate.driver import process_sides, run_pair  # noqa: E402
from hilobench.gate.policy import GateCase, SpeedPolicy, gate_cases  # noqa: E402


def clopper_pearson(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval: honest with zero or few events."""
    if n == 0:
        return 0.0, 1.0
    a = (1 - conf) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def load_cases(suite: Path | None, policy: SpeedPolicy, threads: int | None) -> list[GateCase]:
    if suite is not None and suite.is_file():
        from hilobench.suite.loader import load_suite

        over = {"threads": threads} if threads else None
        return gate_cases(load_suite(suite, overrides=over), policy)
    # no suite: two small layers, one of them the slowed attention
    opts = (("dim", 256), ("heads", 8))
    return [
        GateCase(Case("layer", n, res=(224, 224), batch=8, options=opts), n, policy)
        for n in ("hilo", "msa")
    ]


def one_gate_run(
    slowdown: str | None, cases: list[GateCase], budget: float | None
) -> list[dict[str, Any]]:
    """Measure and judge every case once, exactly as ``hilobench gate`` does (the working
    tree on both sides; ``slowdown``: the candidate's test-only knob)."""
    t0 = time.perf_counter()
    verdict = run_pair(
        process_sides(ROOT, ROOT, slowdown=slowdown), cases, budget_s=budget, count=False
    )
    seconds = (time.perf_counter() - t0) / max(len(cases), 1)
    out = []
    for gc, res in zip(cases, verdict.cases, strict=True):
        s = res.speed
        out.append(
            {
                "case": gc.case.label(),
                "name": gc.case.name,
                "verdict": res.verdict,
                "change": s.change if s else None,
                "first_change": (s.first.change if s and s.first else None),
                "p": s.p_value if s else None,
                "n": s.n_base if s else 0,
                "remeasured": bool(s and s.first),
                "first_verdict": (s.first.verdict if s and s.first else res.verdict),
                "seconds": seconds,
            }
        )
    return out


def rate_line(what: str, k: int, n: int) -> str:
    lo, hi = clopper_pearson(k, n)
    r = k / n if n else float("nan")
    return f"{what:<44} {k:>4}/{n:<4} = {r:6.1%}   95% CI [{lo:.1%}, {hi:.1%}]"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", type=Path, default=ROOT / "suites" / "ci_smoke.yaml")
    ap.add_argument("--target", default="hilo", help="case name(s) to slow down, comma separated")
    ap.add_argument("--slowdowns", default="1.10,1.20")
    ap.add_argument(
        "--budget", type=float, default=None, help="seconds per case (default: each case's own)"
    )
    ap.add_argument("--minutes", type=float, default=15.0, help="stop starting reps after this")
    ap.add_argument("--max-reps", type=int, default=1000)
    ap.add_argument("--null-weight", type=int, default=2, help="null reps per slowdown rep")
    ap.add_argument("--json", type=Path, default=None, help="write every verdict here")
    ap.add_argument("--threads", type=int, default=None, help="override the suite's threads")
    args = ap.parse_args()

    policy = SpeedPolicy()
    cases = load_cases(args.suite, policy, args.threads)
    factors = [float(x) for x in args.slowdowns.split(",") if x.strip()]
    budget = args.budget
    shown = f"{budget:g} s" if budget is not None else "each case's own budget"
    t_start = time.perf_counter()
    targets = [t.strip() for t in args.target.split(",") if t.strip()]
    knobs: dict[float, str | None] = {1.0: None}
    for f in factors:
        knobs[f] = ",".join(f"{t}={f}" for t in targets)
    schedule = [1.0] * args.null_weight + factors
    results: dict[float, list[list[dict[str, Any]]]] = {f: [] for f in knobs}
    wall: list[float] = []
    print(
        f"{len(cases)} case(s): {', '.join(c.case.label() for c in cases)}; budget {shown} "
        f"per case; slowing {args.target!r} by {factors} in the candidate",
        flush=True,
    )
    rep = 0
    deadline = t_start + args.minutes * 60
    while rep < args.max_reps and time.perf_counter() < deadline:
        for f in schedule:
            if time.perf_counter() >= deadline:
                break
            t0 = time.perf_counter()
            verdicts = one_gate_run(knobs[f], cases, budget)
            wall.append(time.perf_counter() - t0)
            results[f].append(verdicts)
            bad = [v for v in verdicts if v["verdict"] == "regression"]
            changes = " ".join(
                f"{v['name']}:{v['change']:+.3f}" if v["change"] is not None else "-"
                for v in verdicts
            )
            print(
                f"rep {rep:3d} x{f:.2f}  {len(bad)} regression(s)  {changes}  ({wall[-1]:.1f} s)",
                flush=True,
            )
        rep += 1

    print("\n== gate error rates ==")
    print(
        f"policy: min_effect {policy.min_effect:.0%}, alpha {policy.alpha}, confirm at "
        f"{policy.confirm_fraction * policy.min_effect:.0%}; budget {shown} per case"
    )
    null = results[1.0]
    k_case = sum(v["verdict"] == "regression" for run in null for v in run)
    n_case = sum(len(run) for run in null)
    k_run = sum(any(v["verdict"] == "regression" for v in run) for run in null)
    print(rate_line("false alarms per case (same code)", k_case, n_case))
    print(rate_line("false alarms per gate run (same code)", k_run, len(null)))
    rem = sum(v["remeasured"] for run in null for v in run)
    print(f"{'borderline re-measurements (same code)':<44} {rem:>4}/{n_case}")
    summary: dict[str, Any] = {
        "budget_s": budget,
        "cases": [c.case.label() for c in cases],
        "null": {"case": [k_case, n_case], "run": [k_run, len(null)]},
    }
    for f in factors:
        runs = results[f]
        slowed = [v for run in runs for v in run if v["name"] in targets]
        k = sum(v["verdict"] == "regression" for v in slowed)
        k_run = sum(any(v["verdict"] == "regression" for v in run) for run in runs)
        print(rate_line(f"detected x{f:.2f} (per slowed case)", k, len(slowed)))
        print(rate_line(f"gate runs failing with x{f:.2f}", k_run, len(runs)))
        others = [v for run in runs for v in run if v["name"] not in targets]
        ko = sum(v["verdict"] == "regression" for v in others)
        if others:
            print(rate_line("  false alarms on the other cases", ko, len(others)))
        ch = sorted(v["change"] for v in slowed if v["change"] is not None)
        if ch:
            mid = ch[len(ch) // 2]
            print(f"  measured change: median {mid:+.3f}, range {ch[0]:+.3f}…{ch[-1]:+.3f}")
        summary[f"x{f}"] = {"case": [k, len(slowed)], "run": [k_run, len(runs)]}
    if wall:
        wall.sort()
        print(
            f"measurement wall time per gate run: median {wall[len(wall) // 2]:.1f} s, "
            f"max {wall[-1]:.1f} s (worker start included, git checkout not)"
        )
    total = time.perf_counter() - t_start
    print(f"total {total / 60:.1f} min")
    summary["wall_s"] = wall
    if args.json:
        args.json.write_text(
            json.dumps({"summary": summary, "runs": {str(k): v for k, v in results.items()}}) + "\n"
        )
    return 0 if not math.isnan(total) else 1


if __name__ == "__main__":
    sys.exit(main())
