"""hilobench against timm's own benchmark method, same models, batch, image size and precision.

timm's ``benchmark.py`` times a model its own way: ``create_model`` with random weights, moved
to the device, ``eval()``, inputs ``randn(batch, 3, S, S)``, a fixed number of warm-up steps,
then a fixed number of steps each timed from its start to a synchronised end, under
``torch.no_grad()`` (and ``autocast`` for its ``amp`` precision), with ``cudnn.benchmark`` on;
the figure is images ÷ the whole timed loop. This script re-implements that method (it does not
import or copy timm's script, which is not part of the timm package), applies hilobench's
precision policy to it (the same TF32 / cuDNN flags as ``--dtype``), and runs ``hilobench
model`` on the same model in a subprocess, then reports hilobench ÷ timm. The timm method runs
before and after hilobench, so drift of a busy machine shows as the spread of the two.

Pass the image size explicitly: timm's script defaults to a model's *test* size (288 for
ResNet-50), hilobench to 224; ``--img-size`` sets both.

    python benchmarks/vs_timm.py --device cpu --batch 2 --img-size 224 --out results/vs_timm_cpu
    python benchmarks/vs_timm.py --device cuda --batch 64 --dtype tf32 --out results/gpu_X/vs_timm
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from hilobench.core.case import DTYPES
from hilobench.measure.dtypes import TORCH_DTYPES, apply_precision
from hilobench.measure.env import fingerprint
from hilobench.measure.timing import default_threads, set_threads
from hilobench.run.engine import check_device, check_dtype

#: hilobench model name → timm model name (the issue's four models).
MODELS = {
    "resnet50": "resnet50",
    "swin_t": "swin_tiny_patch4_window7_224",
    "convnext_t": "convnext_tiny",
    "pvtv2_b2": "pvt_v2_b2",
}
#: hilobench ÷ timm within this is agreement.
TOLERANCE = 0.05


def timm_method(
    timm_name: str, *, device: str, batch: int, img: int, dtype: str, warmup: int, iters: int
) -> dict[str, Any]:
    """Images per second the way timm's benchmark measures inference (see the docstring)."""
    import timm  # seconds: only this script needs it

    torch.manual_seed(0)
    apply_precision(dtype, device)
    model = timm.create_model(timm_name, pretrained=False).to(device).eval()
    x = torch.randn(batch, 3, img, img, device=device)
    cuda = device.startswith("cuda")
    amp = TORCH_DTYPES[dtype] != torch.float32

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    def autocast() -> contextlib.AbstractContextManager[Any]:
        if not amp:
            return contextlib.nullcontext()
        return torch.autocast(device.split(":")[0], dtype=TORCH_DTYPES[dtype])

    def step() -> float:
        t0 = time.perf_counter()
        with autocast():
            model(x)
        sync()
        return time.perf_counter() - t0

    with torch.no_grad():
        for _ in range(warmup):
            step()
        sync()
        t0 = time.perf_counter()
        steps = [step() for _ in range(iters)]
        sync()
        elapsed = time.perf_counter() - t0
    return {
        "img_s": batch * iters / elapsed,
        "step_ms_mean": 1e3 * sum(steps) / len(steps),
        "iters": iters,
        "warmup": warmup,
    }


def hilobench_row(
    name: str, *, device: str, batch: int, img: int, dtype: str, threads: int, budget: float
) -> dict[str, Any]:
    """``hilobench model`` on the same settings, in a fresh process; its row."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "hilobench", "model", name, "--device", device,
               "--batch", str(batch), "--res", str(img), "--dtype", dtype, "--impl", "fused",
               "--threads", str(threads), "--budget", str(budget), "--no-roofline",
               "--format", "json", "--out", str(Path(tmp) / "run")]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=budget * 4 + 300)
        if proc.returncode != 0:
            raise RuntimeError(f"hilobench model {name} failed: {proc.stderr.strip()[-500:]}")
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "rows.jsonl").open()]
    (row,) = rows
    return {"cmd": " ".join(cmd[1:3] + cmd[3:-2]), **row}


def compare(args: argparse.Namespace, save: Any = None) -> list[dict[str, Any]]:
    """Every model, both methods; ``save(rows)`` after each one, so a run cut short keeps the
    models it finished."""
    out: list[dict[str, Any]] = []
    for name in args.models:
        common = dict(device=args.device, batch=args.batch, img=args.img_size, dtype=args.dtype)
        before = timm_method(MODELS[name], warmup=args.warmup, iters=args.iters, **common)
        row = hilobench_row(name, threads=args.threads, budget=args.budget, **common)
        after = timm_method(MODELS[name], warmup=args.warmup, iters=args.iters, **common)
        timm_img_s = (before["img_s"] + after["img_s"]) / 2
        ours = row.get("throughput_median")
        ratio = ours / timm_img_s if ours else None
        out.append({
            "model": name,
            "timm_model": MODELS[name],
            "timm_img_s": timm_img_s,
            "timm_img_s_before_after": [before["img_s"], after["img_s"]],
            "hilobench_img_s": ours,
            "hilobench_ci": [row.get("throughput_ci_low"), row.get("throughput_ci_high")],
            "hilobench_status": row.get("status"),
            "precision_policy": row.get("precision_policy"),
            "ratio": ratio,
            "within_tolerance": ratio is not None and abs(ratio - 1) <= TOLERANCE,
        })  # fmt: skip
        print(_line(out[-1]), flush=True)
        if save is not None:
            save(out)
    return out


def _line(r: dict[str, Any]) -> str:
    ratio = "-" if r["ratio"] is None else f"{r['ratio']:.3f}"
    b, a = r["timm_img_s_before_after"]
    ours = r["hilobench_img_s"] or 0.0
    ok = "yes" if r["within_tolerance"] else "no"
    return f"| {r['model']} | {r['timm_model']} | {b:.2f} / {a:.2f} | {ours:.2f} | {ratio} | {ok} |"


HEADER = (
    "| model | timm model | timm method img/s (before / after) | hilobench img/s | "
    "hilobench ÷ timm | within ±5% |\n|---|---|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--models", default=",".join(MODELS), help="comma separated: " + ", ".join(MODELS)
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--dtype", default="float32", help="float32, tf32 (cuda), bfloat16, float16")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (both sides)")
    p.add_argument("--warmup", type=int, default=10, help="timm method: warm-up steps")
    p.add_argument("--iters", type=int, default=40, help="timm method: timed steps")
    p.add_argument("--budget", type=float, default=5.0, help="hilobench: seconds per case")
    p.add_argument("--out", type=Path, default=None, help="directory for results.md / .json")
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in args.models if m not in MODELS]
    if bad:
        print(
            f"vs_timm: unknown model {bad[0]!r}; choose from: {', '.join(MODELS)}", file=sys.stderr
        )
        return 2
    if args.dtype not in DTYPES:
        print(f"vs_timm: unknown dtype {args.dtype!r}; choose from: {', '.join(DTYPES)}",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        check_device(args.device)
        check_dtype(args.dtype, args.device)
    except Exception as exc:  # ConfigError: one line, exit 2
        print(f"vs_timm: {exc}", file=sys.stderr)
        return 2
    args.threads = set_threads(args.threads or default_threads())
    env = fingerprint(args.device, args.threads)
    machine = env.get("gpu_name") or env["cpu_model"]
    print(f"{machine} · torch {env['torch']} · {args.device} · {args.dtype} · batch "
          f"{args.batch} · {args.img_size}px · {args.threads} threads")  # fmt: skip
    print(HEADER, flush=True)
    cmd = "python benchmarks/vs_timm.py " + " ".join(argv if argv is not None else sys.argv[1:])

    def save(rows: list[dict[str, Any]]) -> None:
        if not args.out:
            return
        args.out.mkdir(parents=True, exist_ok=True)
        settings = {k: v for k, v in vars(args).items() if k != "out"}
        (args.out / "vs_timm.json").write_text(json.dumps(
            {"command": cmd, "settings": settings, "env": env, "rows": rows},
            indent=1, default=str) + "\n")  # fmt: skip
        lines = [f"`{cmd}`", "", HEADER, *(_line(r) for r in rows), ""]
        (args.out / "vs_timm.md").write_text("\n".join(lines))

    rows = compare(args, save)
    return 0 if all(r["within_tolerance"] for r in rows) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
