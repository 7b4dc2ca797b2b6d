"""Measure one Case: build → count → time → memory → Row.

This is the one place a Case turns into numbers; the CLI, the suite runner and the gate all
call :func:`run_case`, so every row is measured the same way.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from hilobench import backends
from hilobench.attention import build_attention, get_attention, kernels
from hilobench.core import options
from hilobench.core.case import LAYER_SCALE, Case, check_threads, fmt_hw, parse_hw
from hilobench.core.errors import ConfigError
from hilobench.core.row import ROW_SCHEMA_VERSION, Row, Status, is_measured
from hilobench.measure import energy, memory, rowstats, timing
from hilobench.measure.bound import add_bound, reserve_s, skipped, trace_step
from hilobench.measure.dtypes import TORCH_DTYPES, apply_precision, autocast, check_precision
from hilobench.measure.flops import count_macs
from hilobench.measure.graphs import capture, check_graphs
from hilobench.measure.roofline import achieved_fraction
from hilobench.measure.warm import warm_process

#: Shortest timed sample: below ~20 ms, timer resolution and scheduler jitter dominate, so short
#: calls are repeated inside one sample (the row reports per-call time and calls_per_sample).
MIN_SAMPLE_S = 0.02


@dataclass
class Subject:
    """What gets timed: a module, how to call it, and its counts."""

    module: nn.Module
    make_inputs: Callable[[str, int], tuple[Any, ...]]  # (device, batch) -> forward args
    tokens: tuple[int, int] | None
    layers_per_call: int
    analytic_macs: int | None
    attention: str
    #: columns the row gets as they are (a dense head's settings)
    columns: dict[str, Any] = field(default_factory=dict)
    #: the MAC count's columns, where the subject counts itself (a dense model, by parts)
    count: Callable[[], dict[str, Any]] | None = None


def check_device(device: str) -> None:
    """Refuse a device this machine cannot run, before anything is built or written."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device {device!r} requested but CUDA is not available here; use --device cpu"
        )
    _, _, ordinal = device.partition(":")
    if ordinal and device.startswith("cuda"):
        n = torch.cuda.device_count()
        if not ordinal.isdigit() or int(ordinal) >= n:
            raise ConfigError(
                f"device {device!r} is not on this machine: it has {n} CUDA device(s), "
                f"cuda:0 to cuda:{n - 1}"
            )


check_dtype = check_precision  # the name callers use


def layer_tokens(case: Case) -> tuple[int, int]:
    """Token map of a layer case: explicit ``tokens`` option, else the 1/16-scale map of ``res``."""
    opts = case.opts
    if opts.get("tokens") is not None:
        return parse_hw(opts["tokens"], "tokens")
    h, w = case.res[0] // LAYER_SCALE, case.res[1] // LAYER_SCALE
    if h < 1 or w < 1:
        raise ConfigError(
            f"resolution {fmt_hw(case.res)} is too small: its 1/{LAYER_SCALE}-scale token map "
            f"would be {h}x{w}; use a resolution >= {LAYER_SCALE} or --tokens HxW"
        )
    return h, w


def build_subject(case: Case) -> Subject:
    """Build the module a case measures (on the CPU, float32)."""
    torch.manual_seed(0)
    opts = case.opts
    if case.kind == "layer":
        h, w = layer_tokens(case)
        entry = get_attention(case.name)  # an unknown name first; also loads plug-ins
        # a knob the layer does not take would be ignored by the builder but kept in the key
        options.check_taken("layer", [case.name], opts)
        options.check_map_knobs({**entry.defaults, **opts}, (h, w))
        kwargs = options.builder_kwargs("layer", opts)  # dim, num_heads and the layer's knobs
        dim = int(kwargs["dim"])
        module = build_attention(case.name, impl=case.impl, **kwargs)
        lpc = int(getattr(module, "layers_per_call", 1))

        def make_inputs(device: str, batch: int) -> tuple[Any, ...]:
            return (torch.randn(batch, h * w, dim, device=device), h, w)

        return Subject(module, make_inputs, (h, w), lpc, int(module.macs(h, w)), case.name)

    from hilobench.models import analytic_macs, build_model  # torchvision ~1.2 s: models only

    stage3 = (-(-case.res[0] // LAYER_SCALE), -(-case.res[1] // LAYER_SCALE))
    options.check_map_knobs(opts, stage3, f" of stage 3 (1/{LAYER_SCALE} of {fmt_hw(case.res)})")
    rh, rw = case.res

    def make_model_inputs(device: str, batch: int) -> tuple[Any, ...]:
        return (torch.randn(batch, 3, rh, rw, device=device),)

    if opts.get("head"):  # a detection or segmentation model around the backbone
        from hilobench.models.dense_count import build_counted  # torchvision detection

        dense, cols, count = build_counted(case, make_model_inputs)
        return Subject(dense, make_model_inputs, None, 1, None, opts.get("attn") or "", cols, count)
    model = build_model(
        case.name, res=case.res, impl=case.impl, **options.builder_kwargs("model", opts)
    )
    macs = analytic_macs(model, case.res)
    return Subject(model, make_model_inputs, None, 1, macs, opts.get("attn") or "")


def validate_case(case: Case, *, fits: bool = False) -> None:
    """Raise ConfigError for a case that cannot be built, cheaply (layers are small; models are
    built on the meta device, so no weights are allocated or initialised for real). ``fits``:
    also refuse a case too big for the memory available now (a command about to measure it
    here; a suite checked for another machine is not judged by this one's memory)."""
    check_device(case.device)
    check_dtype(case.dtype, case.device)
    check_graphs(case.opts, case.device, case.mode, case.compile)
    check_threads(case.threads)
    backends.check_case(case)
    if case.kind == "layer":
        subject = build_subject(case)
    else:
        with torch.device("meta"):
            subject = build_subject(case)
    if fits:
        check_memory(case, subject)


def check_memory(case: Case, subject: Subject) -> None:
    """Estimate what ``case`` holds at once and refuse it when that exceeds the memory available:
    the attention matrix of the reference path (batch x heads x N x M elements) plus input and
    activations at a rough multiple of the input; training keeps about twice that."""
    size = TORCH_DTYPES[case.dtype].itemsize * (2 if case.mode == "train" else 1)
    if subject.tokens:
        h, w = subject.tokens
        scores = getattr(subject.module, "score_elements", None)
        attn = int(scores(h, w)) if callable(scores) and case.impl == "reference" else 0
        act = h * w * int(getattr(subject.module, "dim", 1)) * memory.LAYER_ACTIVATION_FACTOR
    else:
        attn, act = 0, 3 * case.res[0] * case.res[1] * memory.MODEL_ACTIVATION_FACTOR
    memory.check_fits(case.label(), case.batch * attn * size, case.batch * act * size, case.device)


def make_step(case: Case, subject: Subject, inputs: tuple[Any, ...]) -> Callable[[], Any]:
    """The callable that is timed: inference, or a full training step for ``mode=train``."""
    module = subject.module
    if case.mode == "infer":
        module.eval()
        graphs = bool(case.opts.get("cuda_graphs"))

        def infer() -> Any:
            apply_precision(case.dtype, case.device)  # the policy, whatever ran before
            with torch.inference_mode(), autocast(case.dtype, case.device, graphs):
                return module(*inputs)

        return infer

    module.train()
    opt = torch.optim.AdamW(module.parameters(), lr=1e-4)
    labels = None
    if case.kind == "model":
        gen = torch.Generator().manual_seed(0)
        n_cls = int(getattr(module, "num_classes", 1000))
        labels = torch.randint(0, n_cls, (case.batch,), generator=gen).to(case.device)

    def train_step() -> Any:
        apply_precision(case.dtype, case.device)
        opt.zero_grad(set_to_none=True)
        with autocast(case.dtype, case.device):
            out = module(*inputs)
            if labels is not None:
                loss = nn.functional.cross_entropy(out.float(), labels)
            else:
                loss = out.float().square().mean()
        loss.backward()
        opt.step()
        return loss

    return train_step


def _bytes_of(tensors: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


def base_row(case: Case) -> Row:
    """Identity columns of a row: known before anything is measured."""
    opts = case.opts
    return {
        "schema": ROW_SCHEMA_VERSION,
        "case_key": case.key,
        "kind": case.kind,
        "name": case.name,
        "attention": case.name if case.kind == "layer" else (opts.get("attn") or ""),
        "impl": case.impl,
        "mode": case.mode,
        "res": fmt_hw(case.res),
        "tokens": "",
        "batch": case.batch,
        "device": case.device,
        "dtype": case.dtype,
        "threads": case.threads,
        "compile": case.compile,
        "backend": case.backend,
        "channels_last": case.channels_last,
        "options": {k: v for k, v in case.options},
        "case": case.to_json(),
    }


def run_case(
    case: Case,
    *,
    env_id: str = "",
    count: bool = True,
    timed: bool = True,
    peak_macs_per_s: float | None = None,
) -> Row:
    """Measure ``case`` and return its row. OOM and runtime failures become rows with a status
    (``OOM`` / ``error``) keeping whatever was measured before; bad settings raise ConfigError.
    ``timed=False`` stops after counts and memory (a compare group times its members together).
    ``peak_macs_per_s`` (this device's GEMM rate at the dtype, measured once per run) adds the
    roofline column: the achieved MAC rate of an inference row as a fraction of it.
    """
    check_device(case.device)
    check_dtype(case.dtype, case.device)
    check_graphs(case.opts, case.device, case.mode, case.compile)
    backends.check_case(case)
    row = base_row(case)
    row["env_id"] = env_id
    row.update(apply_precision(case.dtype, case.device))  # type: ignore[typeddict-item]
    row["threads"] = timing.set_threads(case.threads)
    t0 = time.perf_counter()
    subject = build_subject(case)
    warm_process(count=count)
    # the budget covers everything after the build: count trace, memory pass, warm-up, samples
    deadline = time.perf_counter() + case.budget
    lpc = subject.layers_per_call
    if subject.tokens:
        row["tokens"] = f"{subject.tokens[0]}x{subject.tokens[1]}"
    row["params"] = sum(p.numel() for p in subject.module.parameters()) // lpc
    row["macs"] = subject.analytic_macs // lpc if subject.analytic_macs is not None else None
    row["layers_per_call"] = lpc
    if case.kind == "layer":  # fused == reference where the layer has no softmax attention
        row["fused_is_reference"] = bool(getattr(subject.module, "fused_is_reference", False))
    row.update(subject.columns)  # type: ignore[typeddict-item]
    if count and subject.count is not None:
        row.update(subject.count())  # type: ignore[typeddict-item]
    elif count:
        # LayerNorm counts 5 MACs per element, as the paper's fvcore figures do (SRA: 419.56M)
        # eval(): fvcore charges BatchNorm 2 per element at inference (5 in training)
        subject.module.eval()
        mc = count_macs(subject.module, subject.make_inputs("cpu", 1), count_norms=True)
        row["macs_traced"] = mc.total // lpc
        row["uncounted_ops"] = list(mc.uncounted)
    row["status"] = Status.OK
    row["message"] = ""
    try:
        _measure(case, subject, row, timed=timed, deadline=deadline)
    except Exception as exc:  # a failed measurement is a row, never a lost run
        if isinstance(exc, ConfigError):
            raise
        row["status"] = getattr(exc, "status", Status.OOM if memory.is_oom(exc) else Status.ERROR)
        msg = str(exc).strip().splitlines()
        row["message"] = (msg[0] if msg else type(exc).__name__)[:300]
        row["traceback"] = traceback.format_exc(limit=3)[-2000:]
    finally:
        if case.device.startswith("cuda"):
            torch.cuda.empty_cache()
    add_roofline(row, peak_macs_per_s)
    row["wall_s"] = round(time.perf_counter() - t0, 3)
    # what the budget covers, apart from the build and the process's one-off start-up
    row["budgeted_s"] = round(time.perf_counter() - deadline + case.budget, 3)
    return row


def add_roofline(row: Row, peak_macs_per_s: float | None) -> None:
    """Achieved MAC/s and its fraction of the device peak (inference rows: forward MACs only),
    and the ``bound`` diagnosis (measure/bound.py) of any row that was traced for it."""
    if is_measured(row) and row.get("bound_busy") is not None:
        row.update(add_bound(row, peak_macs_per_s))  # type: ignore[typeddict-item]
    if row.get("mode") != "infer" or not is_measured(row) or not peak_macs_per_s:
        return
    tp = row.get("throughput_median")
    macs = row.get("macs") or row.get("macs_traced")  # timm models have only the traced count
    row["achieved_macs_per_s"] = macs * tp if macs and tp else None
    row["roofline"] = achieved_fraction(macs, tp, peak_macs_per_s)


def prepare_step(
    case: Case, subject: Subject, row: Row
) -> tuple[Callable[[], Any], tuple[Any, ...]]:
    """Move the subject to its device, draw its inputs and return (timed step, inputs)."""
    module = subject.module.to(case.device)
    torch.manual_seed(1)
    inputs = subject.make_inputs(case.device, case.batch)
    if case.channels_last and case.kind == "model":
        module = module.to(memory_format=torch.channels_last)
        inputs = (inputs[0].contiguous(memory_format=torch.channels_last),)
    eager = make_step(case, subject, inputs)  # fused: kernels decided before any measuring
    row["fused_kernel"] = kernels.decide(eager) if case.impl == "fused" else None
    step = backends.prepare_case(case, module, inputs, eager, row)
    if case.compile:
        row["compile_s"] = row.get("prepare_s", 0.0)
    if case.opts.get("cuda_graphs"):
        step = capture(step, case.device)
        row["graph_capture_s"] = step.capture_s
    return step, inputs


def _measure(
    case: Case,
    subject: Subject,
    row: Row,
    timed: bool = True,
    deadline: float | None = None,
) -> None:
    device = case.device
    t_prep = time.perf_counter()
    step, inputs = prepare_step(case, subject, row)
    module = subject.module
    if deadline is not None and case.backend != "eager":  # export, compile and the parity
        deadline += time.perf_counter() - t_prep  # check are reported apart, not budgeted

    # Memory first: the first calls of a fresh process show the true high-water mark.
    t_mem = time.perf_counter()
    resident = _bytes_of(module.parameters()) + _bytes_of(module.buffers()) + _bytes_of(inputs)
    if case.backend not in backends.TORCH_BACKENDS:  # torch cannot see a runtime's memory
        row.update(backends.runtime_memory(step, device))  # type: ignore[typeddict-item]
    elif device.startswith("cuda"):
        step()
        torch.cuda.synchronize()
        # absolute, like the paper's max_memory_allocated: what is resident + the step's peak
        peak = memory.cuda_peak_bytes(step, device)
        row["peak_mem_bytes"] = torch.cuda.memory_allocated(device) + peak
        row["peak_rss_bytes"] = None
    else:
        # one call serves both figures: the RSS high-water mark around the tracked call
        tensor_peak: list[int] = []
        row["peak_rss_bytes"] = memory.peak_rss_rise(
            lambda: tensor_peak.append(memory.peak_tensor_bytes(step))
        )
        row["peak_mem_bytes"] = resident + tensor_peak[0]
    mem_s = time.perf_counter() - t_mem  # an upper bound of one call: the memory pass warmed up

    left = case.budget if deadline is None else max(0.0, deadline - time.perf_counter())
    # the bound diagnosis's two calls come out of the budget too, or are skipped (bound.py)
    keep = reserve_s(mem_s, left)
    if timed:
        meter = energy.Meter(energy.find_counter(device))  # None where there is no counter
        tm = timing.time_fn(
            step,
            device=device,
            budget_s=left - (keep or 0.0),
            min_sample_s=MIN_SAMPLE_S,
            # no room for a warm-up call: the memory pass was the warm-up, take one sample
            min_warmup=1 if left > mem_s else 0,
            strict_budget=True,
        )
        row.update(timing_columns(case, subject, tm))
        calls = tm.warmup_calls + len(tm.samples_s) * tm.calls_per_sample
        row.update(meter.columns(calls * case.batch))  # type: ignore[typeddict-item]
    traced = trace_step(step, device) if keep is not None else skipped(mem_s, left)
    row.update(traced)  # type: ignore[typeddict-item]


def timing_columns(case: Case, subject: Subject, tm: timing.Timing) -> Row:
    """Row columns of one timing: per-layer samples and the summary stored beside them, with
    status ``few-samples`` (and why) when there are too few for a 95% interval."""
    samples = [s / subject.layers_per_call for s in tm.samples_s]
    cols: Row = {
        "samples_s": samples,
        "calls_per_sample": tm.calls_per_sample,
        "warmup_calls": tm.warmup_calls,
        "budget_capped": tm.capped,
    }
    longest_s = max(tm.samples_s) * tm.calls_per_sample
    summary = rowstats.measured_columns(
        samples, case.batch, longest_s, tm.calls_per_sample, case.budget
    )
    cols.update(summary)  # type: ignore[typeddict-item]
    return cols
