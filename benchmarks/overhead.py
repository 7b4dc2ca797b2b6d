"""Where the wall time of `hilobench suite run SUITE` goes, with and without the preloaded worker.

Runs the suite several times, alternating plain workers (``HILOBENCH_PRELOAD=0``: one
``python -m hilobench.run.worker`` per job) and the preloaded one (a child forked per job), so load
from other processes hits both alike, and reports medians per phase:

- ``start``: the process start and imports a worker pays (``python -c "import
hilobench.run.engine"``)
  and the one-off warm-up (:func:`hilobench.measure.warm.warm_process`), measured on their own;
- per run: the time until the first worker call (runner start-up, provenance, roofline peak),
  the time inside worker calls (count/memory jobs, the group's timing job), the preloaded
  server's start, the rows' ``wall_s`` (in the worker, build to row) and ``group_wall_s``, and
  the rest (the tables, claims and files written after the last worker).

    python benchmarks/overhead.py --runs 3 [--suite ci_smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: The instrumented run: times each worker call and the preloaded server's start, then runs
#: the command line as ``hilobench`` would. argv: OUT.json, then the hilobench arguments.
CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from hilobench.run import forkserver, runner
calls, server = [], []
real_call, real_init = runner.call_worker, forkserver.Server.__init__
def call_worker(job, timeout, on_poll=None):
    t = time.perf_counter()
    try:
        return real_call(job, timeout, on_poll)
    finally:
        calls.append({"kind": job.get("kind"), "timed": job.get("timed"), "t0": t - t0,
                      "s": time.perf_counter() - t})
def init(self, env):
    t = time.perf_counter()
    real_init(self, env)
    server.append(time.perf_counter() - t)
runner.call_worker, forkserver.Server.__init__ = call_worker, init
from hilobench.cli.app import main
try:
    main(sys.argv[2:])
except SystemExit:
    pass
json.dump({"total_in": time.perf_counter() - t0, "calls": calls, "server": server},
          open(sys.argv[1], "w"))
"""


def _secs(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def one_run(suite: str, preload: bool, tmp: Path) -> dict[str, Any]:
    out, stats = tmp / f"run-{preload}-{time.time_ns()}", tmp / "stats.json"
    env = {**os.environ, "HILOBENCH_PRELOAD": "1" if preload else "0"}
    cmd = [sys.executable, "-c", CHILD, str(stats), "suite", "run", suite, "--out", str(out)]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    total = time.perf_counter() - t
    st = json.loads(stats.read_text())
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    calls = st["calls"]
    in_calls = sum(c["s"] for c in calls)
    end_calls = max(c["t0"] + c["s"] for c in calls)
    return {
        "total_s": total,
        "interpreter_to_main_s": total - st["total_in"],
        "before_first_worker_s": min(c["t0"] for c in calls),
        "count_memory_jobs_s": sum(c["s"] for c in calls if c["kind"] == "case"),
        "group_job_s": sum(c["s"] for c in calls if c["kind"] == "group"),
        "server_start_s": sum(st["server"]),
        "rows_wall_s": sum(r.get("wall_s") or 0 for r in rows),
        "group_wall_s": max((r.get("group_wall_s") or 0) for r in rows),
        "outside_workers_s": total - in_calls,
        "after_last_worker_s": st["total_in"] - end_calls,
        "rows_budgeted_s": sum(r.get("budgeted_s") or 0 for r in rows),
        "workers": len(calls),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs of each kind, alternating")
    ap.add_argument("--suite", default="ci_smoke")
    args = ap.parse_args()
    py = sys.executable
    starts = {
        "python -c pass": [_secs([py, "-c", "pass"]) for _ in range(3)],
        "worker imports (python + torch + hilobench.run.engine)": [
            _secs([py, "-c", "import hilobench.run.engine, hilobench.run.worker"]) for _ in range(3)
        ],
        "imports + warm_process": [
            _secs(
                [
                    py,
                    "-c",
                    "import hilobench.run.engine, hilobench.run.worker\n"
                    "from hilobench.measure.warm import warm_process; warm_process()",
                ]
            )
            for _ in range(3)
        ],  # fmt: skip
    }
    for k, v in starts.items():
        print(f"{k}: median {statistics.median(v):.2f} s of {[round(x, 2) for x in v]}")
    res: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as d:
        for _ in range(args.runs):
            for preload in (False, True):
                r = one_run(args.suite, preload, Path(d))
                res[preload].append(r)
                print(f"preload={int(preload)} total {r['total_s']:.2f} s", flush=True)
    keys = list(res[False][0])
    print(f"\n| phase (median of {args.runs}) | plain workers | preloaded |")
    print("|---|---:|---:|")
    for k in keys:
        a, b = (statistics.median(r[k] for r in res[p]) for p in (False, True))
        print(f"| {k} | {a:.2f} | {b:.2f} |")
    ratio = [a["total_s"] / b["total_s"] for a, b in zip(res[False], res[True], strict=True)]
    print(f"\nplain / preloaded total, per pair: {[round(x, 2) for x in ratio]}")


if __name__ == "__main__":
    main()
