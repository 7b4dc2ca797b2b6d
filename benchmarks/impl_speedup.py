"""Fused vs reference attention, measured interleaved in one run.

For every attention (and optionally whole backbones) this builds the reference module, a copy
switched to the fused path with the same weights, checks both compute the same output, then
times them round by round (reference, fused, fused, reference, ...) so machine drift hits both
alike. The speed-up is summarised per round: median and 95% interval of reference/fused time.

    python benchmarks/impl_speedup.py                       # 14x14 @ b64 and 56x56 @ b4, CPU
    python benchmarks/impl_speedup.py --device cuda --dtype bfloat16 --out results/impl_speedup_cuda
    python benchmarks/impl_speedup.py --attn none --model litv2_s --batch 16
    python benchmarks/impl_speedup.py --summarize RUN1 RUN2 --out DIR   # one table of two runs
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import torch

from hilobench.attention import available_attentions, get_attention, set_impl
from hilobench.core.case import Case, parse_hw
from hilobench.measure import memory, stats, timing
from hilobench.measure.env import env_id, fingerprint, machine_class, machine_class_label
from hilobench.run.engine import (
    MIN_SAMPLE_S,
    Subject,
    build_subject,
    check_device,
    check_dtype,
    make_step,
)
from hilobench.store.writer import RunDir, check_writable, new_run_dir


def max_rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a-b| / max |a|: the parity figure the fused paths are held to."""
    a, b = a.detach().float(), b.detach().float()
    return float((a - b).abs().max() / a.abs().max().clamp_min(1e-12))


def parity(case: Case, ref: Subject, fused: torch.nn.Module) -> float:
    """Output agreement of the two paths on a fresh batch-2 input (float32, CPU)."""
    torch.manual_seed(123)
    inputs = ref.make_inputs("cpu", 2)
    ref.module.eval()
    fused.eval()
    with torch.inference_mode():
        return max_rel_error(ref.module(*inputs), fused(*inputs))


def measure_pair(case: Case, budget: float) -> dict[str, Any]:
    """One row: parity, both paths' timing summaries and the per-round fused speed-up."""
    ref = build_subject(case.with_(impl="reference"))
    fused_module = set_impl(copy.deepcopy(ref.module), "fused")
    row: dict[str, Any] = {
        "name": case.name,
        "kind": case.kind,
        "tokens": f"{ref.tokens[0]}x{ref.tokens[1]}" if ref.tokens else "",
        "res": f"{case.res[0]}x{case.res[1]}",
        "batch": case.batch,
        "device": case.device,
        "dtype": case.dtype,
        "max_rel_error": parity(case, ref, fused_module),
        "status": "ok",
        "message": "",
    }
    fused = Subject(fused_module, ref.make_inputs, ref.tokens, ref.layers_per_call, None, "")
    try:
        steps = {}
        for impl, subj in (("reference", ref), ("fused", fused)):
            subj.module.to(case.device)
            torch.manual_seed(1)
            inputs = subj.make_inputs(case.device, case.batch)
            steps[impl] = make_step(case.with_(impl=impl), subj, inputs)
        res = timing.time_interleaved(
            steps, device=case.device, budget_s=budget, min_sample_s=MIN_SAMPLE_S
        )
        for impl, tm in res.items():
            s = stats.summarize(tm.samples_s, case.batch * ref.layers_per_call)
            row[f"{impl}_img_s"] = s["throughput_median"]
            row[f"{impl}_cov"] = s["cov"]
            row[f"{impl}_samples_s"] = tm.samples_s
        # ratio_summary(a, b) is b/a per round: reference time over fused time = fused speed-up
        r = stats.ratio_summary(res["fused"].samples_s, res["reference"].samples_s)
        row.update(speedup=r["ratio_median"], speedup_ci_low=r["ratio_ci_low"],
                   speedup_ci_high=r["ratio_ci_high"], rounds=r["n"])  # fmt: skip
    except Exception as exc:  # an OOM at a large map is a result, not a crash
        row["status"] = "OOM" if memory.is_oom(exc) else "error"
        row["message"] = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    finally:
        if case.device.startswith("cuda"):
            torch.cuda.empty_cache()
    return row


def summary_markdown(rows: list[dict[str, Any]], env: dict[str, Any]) -> str:
    """The run as a Markdown table: parity, both throughputs and the speed-up interval."""
    machine = env.get("gpu_name") or env.get("cpu_model") or env.get("device")
    lines = [
        f"Fused vs reference, interleaved per round; {machine}"
        f", {env.get('threads')} threads, torch {env.get('torch')}.",
        "",
        "| case | dtype | max rel err | reference img/s | fused img/s | fused speed-up | 95% CI "
        "| rounds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        label = f"{r['name']} {r['tokens'] or r['res']} b{r['batch']}"
        if r["status"] != "ok":
            lines.append(f"| {label} | {r['dtype']} | {r['max_rel_error']:.1e} | "
                         f"{r['status']} | | | | |")  # fmt: skip
            continue
        lines.append(
            f"| {label} | {r['dtype']} | {r['max_rel_error']:.1e} | {r['reference_img_s']:.1f} "
            f"| {r['fused_img_s']:.1f} | {r['speedup']:.2f}x "
            f"| {r['speedup_ci_low']:.2f}–{r['speedup_ci_high']:.2f} | {r['rounds']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--attn", default="all", help="comma list, 'all' or 'none'")
    p.add_argument("--tokens", default="14x14:64,56x56:4",
                   help="token maps with their batch, HxW:BATCH, comma separated")  # fmt: skip
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--model", default="", help="backbones to compare too, e.g. litv2_s")
    p.add_argument("--res", default="224", help="backbone resolution")
    p.add_argument("--batch", type=int, default=16, help="backbone batch")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--budget", type=float, default=6.0, help="seconds per pair")
    p.add_argument("--out", default=None, help="run directory (default results/runs/<stamp>)")
    p.add_argument(
        "--summarize", nargs="+", metavar="RUN", help="join these runs' rows in one summary (--out)"
    )
    a = p.parse_args(argv)
    if a.summarize:
        if not a.out:
            p.error("--summarize needs --out")
        return summarize_runs(a.summarize, a.out)

    check_device(a.device)
    check_dtype(a.dtype, a.device)
    threads = timing.set_threads(a.threads)
    names = (
        [] if a.attn == "none" else available_attentions() if a.attn == "all" else a.attn.split(",")
    )
    cases = []
    for spec in a.tokens.split(","):
        hw, _, batch = spec.partition(":")
        h, w = parse_hw(hw, "tokens")
        for n in names:
            opts: tuple[tuple[str, object], ...] = (
                ("dim", a.dim), ("heads", a.heads), ("tokens", f"{h}x{w}")
            )  # fmt: skip
            if "seq_len" in get_attention(n).knobs:  # learned projections sized to the map
                opts = tuple(sorted((*opts, ("seq_len", h * w))))
            cases.append(Case("layer", n, batch=int(batch or 64), device=a.device,
                              dtype=a.dtype, threads=threads, options=opts))  # fmt: skip
    for m in filter(None, a.model.split(",")):
        cases.append(Case("model", m, res=parse_hw(a.res), batch=a.batch, device=a.device,
                          dtype=a.dtype, threads=threads))  # fmt: skip

    out = RunDir(check_writable(a.out or new_run_dir()))
    env = fingerprint(a.device, threads)
    out.create({**env, "env_id": env_id(env)})
    print(f"{'case':<28}{'max rel err':>12}{'ref img/s':>11}{'fused img/s':>12}"
          f"{'speed-up [95% CI]':>26}")  # fmt: skip
    rows: list[dict[str, Any]] = []
    for case in cases:
        row = measure_pair(case, a.budget)
        out.append(row)
        rows.append(row)
        label = f"{case.name} {row['tokens'] or row['res']} b{case.batch}"
        if row["status"] != "ok":
            print(f"{label:<28}{row['max_rel_error']:>12.2e}  {row['status']}: {row['message']}")
            continue
        ci = f"{row['speedup']:.2f}x [{row['speedup_ci_low']:.2f}, {row['speedup_ci_high']:.2f}]"
        print(f"{label:<28}{row['max_rel_error']:>12.2e}{row['reference_img_s']:>11.1f}"
              f"{row['fused_img_s']:>12.1f}{ci:>26}", flush=True)  # fmt: skip
    write_summary(out.path, rows, out.env())
    print(f"saved to {out.path}", file=sys.stderr)
    return 0


def write_summary(path: Path, rows: list[dict[str, Any]], env: dict[str, Any]) -> None:
    """summary.json and results.md of a run: its rows without the raw samples. (These rows are
    this script's own, not hilobench rows, so they are not read back through the row loader.)"""
    summary = [{k: v for k, v in r.items() if not k.endswith("samples_s")} for r in rows]
    (path / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (path / "results.md").write_text(summary_markdown(summary, env))


def summarize_runs(dirs: list[str], out: str) -> int:
    """Join runs of this script made on one machine (e.g. a run finished in two parts) into one
    summary: refused when their machines differ."""
    rows: list[dict[str, Any]] = []
    envs = []
    for d in map(Path, dirs):
        envs.append(json.loads((d / "env.json").read_text()))
        rows += [json.loads(line) for line in (d / "rows.jsonl").read_text().splitlines() if line]
    classes = {machine_class_label(machine_class(e), dtype=False) for e in envs}
    if len(classes) > 1:
        print(f"error: the runs come from {len(classes)} different machines", file=sys.stderr)
        return 2
    Path(out).mkdir(parents=True, exist_ok=True)
    write_summary(Path(out), rows, envs[0])
    print(f"{len(rows)} rows from {len(dirs)} run(s) summarised in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
