"""Wall time of whole `hilobench layer` / `model` commands against the budget they were given.

`--budget` promises that a case's count trace, memory pass, warm-up and samples fit in it, with
only the build and the process's start-up on top; where one call outlasts the whole budget, the
case takes the memory-pass call and one timed sample. This runs the commands as a
user would (fresh processes), with a cold and then a warm roofline cache, optionally with
PyTorch's CPU kernels capped to AVX2 (no AVX-512, no native bfloat16), and tabulates the
process wall time, the overhead beyond the budget and how many samples each case got.

    python benchmarks/wall_vs_budget.py --out results/wall_vs_budget
    python benchmarks/wall_vs_budget.py --avx2 --out results/wall_vs_budget_avx2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: (label, hilobench arguments, budget seconds)
JOBS: list[tuple[str, list[str], float]] = [
    ("hilo 224 b8", ["layer", "--attn", "hilo", "--res", "224", "--batch", "8"], 1.0),
    ("hilo 224 b8", ["layer", "--attn", "hilo", "--res", "224", "--batch", "8"], 3.0),
    (
        "msa 7x7 b2 bf16",
        [
            "layer",
            "--attn",
            "msa",
            "--dim",
            "64",
            "--heads",
            "4",
            "--tokens",
            "7x7",
            "--batch",
            "2",
            "--dtype",
            "bfloat16",
        ],
        0.3,
    ),  # fmt: skip
    (
        "hilo 224 b8 bf16",
        ["layer", "--attn", "hilo", "--res", "224", "--batch", "8", "--dtype", "bfloat16"],
        1.0,
    ),  # fmt: skip
    ("litv2_s 224 b1", ["model", "litv2_s", "--batch", "1"], 2.0),
    ("litv2_s 224 b4 bf16", ["model", "litv2_s", "--batch", "4", "--dtype", "bfloat16"], 2.0),
]


def run_one(args: list[str], budget: float, env: dict[str, str], out: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "hilobench", *args, "--budget", str(budget), "--format",
           "json", "--out", str(out)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    rows = json.loads(proc.stdout)
    return {
        "wall_s": wall,
        "case_s": sum(float(r["wall_s"]) for r in rows),
        "budgeted_s": sum(float(r.get("budgeted_s") or 0.0) for r in rows),
        "status": ",".join(str(r.get("status")) for r in rows),
        "n_samples": ",".join(str(r.get("n_samples")) for r in rows),
        "capped": any(r.get("budget_capped") for r in rows),
        "warned": "emulated" in proc.stderr,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/runs/wall_vs_budget"))
    ap.add_argument("--avx2", action="store_true", help="cap PyTorch's CPU kernels to AVX2")
    a = ap.parse_args()
    env = dict(os.environ)
    if a.avx2:
        env.update(ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2")
    cache = Path(tempfile.mkdtemp(prefix="hb-cache-"))
    env["HILOBENCH_CACHE_DIR"] = str(cache)  # starts cold: the first run measures the peak
    scratch = Path(tempfile.mkdtemp(prefix="hb-runs-"))
    results = []
    try:
        for i, (label, args, budget) in enumerate(JOBS):
            for attempt in ("cold", "warm") if i == 0 else ("warm",):
                if attempt == "cold":
                    shutil.rmtree(cache, ignore_errors=True)
                r = run_one(args, budget, env, scratch / f"{i}-{attempt}")
                r.update(job=label, budget=budget, cache=attempt)
                results.append(r)
                msg = f"{label:22s} budget {budget:4.1f}s {attempt}: wall {r['wall_s']:5.2f}s"
                print(f"{msg} case {r['case_s']:5.2f}s samples {r['n_samples']}", file=sys.stderr)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    write(a.out, results, a.avx2)


def write(out: Path, results: list[dict[str, Any]], avx2: bool) -> None:
    import platform

    import torch

    from hilobench.measure.capability import cpu_capability
    from hilobench.measure.env import _cpu_model

    out.mkdir(parents=True, exist_ok=True)
    head = ("| command | budget s | roofline cache | process wall s | case wall s | "
            "budgeted part s | samples | capped | emulation warned | status |")  # fmt: skip
    lines = [
        "# Wall time against --budget",
        "",
        f"CPU: {_cpu_model()} ({platform.machine()}), {torch.get_num_threads()} threads, "
        f"PyTorch {torch.__version__}, kernel level {cpu_capability()}"
        + (" (capped with ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2)" if avx2 else ""),
        "",
        f"Load average when the table was written (1/5/15 min): "
        f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} logical CPUs.",
        "",
        "Process wall includes Python and PyTorch start-up; case wall is the rows' `wall_s` "
        "(build, the process's one-off tracer start-up, count trace, memory pass, timing); the "
        "budgeted part is the rows' `budgeted_s` (count trace, memory pass, warm-up, samples), "
        "which `--budget` caps; where one call outlasts the whole budget (emulated bf16 on a "
        "backbone), it is the memory-pass call plus one timed sample.",
        "",
        head,
        "|---" * (head.count("|") - 1) + "|",
    ]
    for r in results:
        lines.append(
            f"| {r['job']} | {r['budget']:.1f} | {r['cache']} | {r['wall_s']:.2f} | "
            f"{r['case_s']:.2f} | {r['budgeted_s']:.2f} | {r['n_samples']} | "
            f"{'yes' if r['capped'] else 'no'} | {'yes' if r['warned'] else 'no'} | "
            f"{r['status']} |"
        )
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out / 'results.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
