"""The CUDA paths, run where a GPU is present (skipped elsewhere): synchronised timing, the
allocator's peak, the fused kernels against the reference paths of every suite layer, float16 /
bfloat16 autocast, torch.compile, out-of-memory rows, training memory, and a whole suite in
worker processes. CPU machines test the same code through the CPU paths; these tests prove
the branches that only a GPU takes."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hilobench.core.case import Case
from hilobench.core.row import is_measured
from hilobench.measure import timing
from hilobench.run.engine import build_subject, run_case
from hilobench.suite.loader import find_suite, load_suite

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

DEVICE = "cuda"


def layer_case(name: str = "hilo", **kw: object) -> Case:
    base: dict[str, object] = dict(
        kind="layer", name=name, res=(224, 224), batch=4, device=DEVICE, budget=0.5
    )
    opts = dict(kw.pop("options", {}))  # type: ignore[call-overload]
    base.update(kw)
    return Case(**base, options=tuple(sorted(opts.items())))  # type: ignore[arg-type]


def suite_layer_cases() -> list[Case]:
    """The single-layer table's 17 cases at its setting (14x14 tokens, dim 768, 12 heads)."""
    suite = load_suite(find_suite("attention_layers"), overrides={"device": DEVICE})
    return [sc.case for sc in suite.cases if sc.case.impl == "reference"]


def _ok(row: dict) -> None:
    assert is_measured(row), row.get("message")


def _spin_s(cycles: int) -> float:
    """Seconds the GPU spends spinning ``cycles``, by CUDA events (device-side, no host clock)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    torch.cuda._sleep(cycles)
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3


def test_timer_waits_for_the_gpu() -> None:
    """A kernel that spins ~10 ms must time as ~10 ms on the host clock: without the
    synchronise the timer would see only the microseconds of the launch."""
    _spin_s(1000)  # load the kernel
    cycles = int(1e6 * 10e-3 / max(_spin_s(1_000_000), 1e-6))  # ~10 ms at the current clock
    kernel_s = _spin_s(cycles)
    tm = timing.time_fn(
        lambda: torch.cuda._sleep(cycles), device=DEVICE, budget_s=0.5, min_samples=3
    )
    med = sorted(tm.samples_s)[len(tm.samples_s) // 2]
    assert med > 0.5 * kernel_s, f"{med * 1e3:.3f} ms timed, the kernel takes {kernel_s * 1e3:.1f}"


def test_layer_row_on_gpu() -> None:
    row = run_case(layer_case("hilo", options={"window": 2, "alpha": 0.9}))
    _ok(row)
    assert row["device"] == DEVICE
    assert row["peak_mem_bytes"] > 0 and row["peak_rss_bytes"] is None
    assert row["throughput_median"] > 0 and all(s > 0 for s in row["samples_s"])
    assert row["macs"] == row["macs_traced"]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("impl", ["reference", "fused"])
def test_autocast_rows(dtype: str, impl: str) -> None:
    row = run_case(layer_case("msa", dtype=dtype, impl=impl))
    _ok(row)
    assert row["dtype"] == dtype and math.isfinite(row["throughput_median"])


def _outputs(case: Case) -> torch.Tensor:
    subject = build_subject(case)
    module = subject.module.to(DEVICE).eval()
    torch.manual_seed(1)
    inputs = subject.make_inputs(DEVICE, case.batch)
    dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(case.dtype)
    autocast = torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None)
    with torch.inference_mode(), autocast:
        return module(*inputs).float()


@pytest.mark.parametrize(
    "case", suite_layer_cases() if torch.cuda.is_available() else [], ids=lambda c: c.name
)
@pytest.mark.parametrize("dtype,tol", [("float32", 2e-3), ("float16", 2e-2)])
def test_fused_kernels_match_reference(case: Case, dtype: str, tol: float) -> None:
    """The fused path (SDPA's flash / memory-efficient kernels on a GPU) computes what the
    reference path computes, for every layer of the table, in float32 and float16."""
    ref_case = dataclasses.replace(case, batch=2, dtype=dtype)
    ref = _outputs(ref_case)
    fused = _outputs(dataclasses.replace(ref_case, impl="fused"))
    assert torch.isfinite(fused).all()
    err = (fused - ref).norm() / ref.norm()
    assert err < tol, f"{case.name} {dtype}: relative error {err:.2e}"


def test_compiled_row() -> None:
    row = run_case(layer_case("msa", compile=True, budget=1.0), count=False)
    _ok(row)
    assert row["compile"] is True and row["compile_s"] > 0


def test_out_of_memory_is_a_row_and_the_next_case_runs() -> None:
    """An attention matrix twice the card's memory: the row says OOM, and the allocator is
    clean for the next case."""
    total = torch.cuda.get_device_properties(0).total_memory
    per_image = 12 * 4096 * 4096 * 4  # heads x N x N float32 scores of a 64x64 token map
    batch = 2 * total // per_image + 1
    row = run_case(layer_case("msa", batch=batch, options={"tokens": "64x64"}), count=False)
    assert row["status"] == "OOM", row.get("message")
    assert "out of memory" in row["message"].lower()
    _ok(run_case(layer_case("msa"), count=False))


def test_training_holds_more_than_inference() -> None:
    case = Case(kind="model", name="litv2_s", res=(224, 224), batch=8, device=DEVICE,
                budget=1.0)  # fmt: skip
    infer = run_case(case, count=False)
    train = run_case(dataclasses.replace(case, mode="train"), count=False)
    _ok(infer)
    _ok(train)
    assert train["peak_mem_bytes"] > infer["peak_mem_bytes"]


def test_suite_in_worker_processes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "hilobench", "suite", "run", "ci_smoke", "--device", DEVICE,
           "--budget", "0.3", "--filter", "hilo,msa", "--no-roofline", "--out", str(out),
           "--format", "json"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=200)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert rows and all(is_measured(r) and r["device"] == DEVICE for r in rows)
    envj = json.loads((out / "env.json").read_text())
    assert torch.cuda.get_device_name(0) in json.dumps(envj)


def test_missing_gpu_ordinal_is_one_line(cli) -> None:  # type: ignore[no-untyped-def]
    code, _, stderr = cli(["layer", "--device", f"cuda:{torch.cuda.device_count()}"])
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "CUDA device" in stderr


# --- precision policy, bound, CUDA graphs, energy and profile on the GPU (issue 24) ---------
# Only APIs torch 2.6 already has: torch.cuda.graph / CUDAGraph, torch.profiler with CUDA
# activity, set_float32_matmul_precision, cudnn.allow_tf32.


def test_precision_policy_is_applied_on_gpu() -> None:
    """float32 rows ran IEEE FP32 matmuls and convolutions, tf32 rows TF32 for both; on an
    Ampere or newer card TF32 is visibly less exact than FP32 on one large matmul."""
    from hilobench.measure.dtypes import apply_precision

    f32 = run_case(layer_case("msa", dtype="float32"), count=False)
    tf32 = run_case(layer_case("msa", dtype="tf32"), count=False)
    _ok(f32)
    _ok(tf32)
    assert (f32["precision_policy"], f32["tf32_matmul"], f32["tf32_cudnn"]) == (
        "fp32",
        False,
        False,
    )
    assert (tf32["precision_policy"], tf32["tf32_matmul"], tf32["tf32_cudnn"]) == (
        "tf32",
        True,
        True,
    )
    assert f32["cudnn_benchmark"] is True
    if torch.cuda.get_device_capability()[0] >= 8:
        g = torch.Generator(device="cpu").manual_seed(0)
        a = torch.randn(1024, 1024, generator=g).to(DEVICE)
        exact = (a.double() @ a.double()).float()
        errs = {}
        for dtype in ("float32", "tf32"):
            apply_precision(dtype, DEVICE)
            errs[dtype] = float(((a @ a) - exact).abs().max())
        apply_precision("float32", DEVICE)
        assert errs["tf32"] > 10 * errs["float32"], errs


def test_gpu_rows_carry_the_bound() -> None:
    from hilobench.measure.bound import BOUNDS

    row = run_case(layer_case("hilo"), count=False, peak_macs_per_s=1e14)
    _ok(row)
    assert row["bound"] in BOUNDS and 0 < row["bound_busy"] <= 1
    assert row["traced_bytes"] > 0 and row["peak_bytes_per_s"] > 1e10  # any GPU: > 10 GB/s


def test_cuda_graph_replays_what_the_eager_step_computes() -> None:
    from hilobench.measure.graphs import Graphed
    from hilobench.run.engine import prepare_step

    case = layer_case("hilo", options={"cuda_graphs": True})
    row = run_case(case, count=False)
    _ok(row)
    assert row["graph_capture_s"] > 0 and row["options"] == {"cuda_graphs": True}
    step, _ = prepare_step(case, build_subject(case), {})  # type: ignore[arg-type]
    assert isinstance(step, Graphed)
    replayed = step().clone()
    torch.testing.assert_close(replayed, step.eager(), rtol=1e-4, atol=1e-4)
    f16 = run_case(dataclasses.replace(case, dtype="float16"), count=False)
    _ok(f16)


def test_energy_from_nvml_where_the_card_has_it() -> None:
    from hilobench.measure.energy import find_counter

    if find_counter(DEVICE) is None:
        pytest.skip("no NVML energy counter here (nvidia-ml-py not installed or unsupported)")
    row = run_case(layer_case("msa", budget=1.5), count=False)
    _ok(row)
    assert row["energy_counter"] == "nvml" and row["energy_j_per_image"] > 0


def test_profile_on_gpu_closes_and_counts_kernels() -> None:
    """A GPU-bound model: the parts add up to the step timed without the profiler within the
    tolerance, and the kernels fill most of the step."""
    from hilobench.profile.breakdown import build
    from hilobench.profile.capture import profile_case

    case = Case(kind="model", name="resnet50", batch=32, device=DEVICE, budget=1.0)
    b = build(profile_case(case, steps=3), depth=1)
    assert b.within_tolerance, f"residual {b.residual:+.3f}"
    assert b.kernel_s is not None and b.kernel_s > 0
    assert b.device_busy is not None and 0.5 < b.device_busy <= 1.05
    assert sum(p.device_s or 0.0 for p in b.kinds) == pytest.approx(b.kernel_s, rel=0.05)
