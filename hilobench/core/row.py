"""Row: one measurement's result, one line of ``rows.jsonl``, typed column by column.

A row is a plain dict on disk (a JSON object per line) and in memory; :class:`Row` says which
columns it may carry and of what type, :data:`REQUIRED_COLUMNS` which ones every stored row
has. ``docs/rows.schema.json`` is the same contract as a JSON Schema, for readers outside
Python; ``tests/core/test_row_schema.py`` keeps the two in step and validates real rows against it.

:data:`ROW_SCHEMA_VERSION` (the ``schema`` column) changes whenever a column changes meaning,
so a comparison never judges rows of another schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypedDict

#: Version of the row columns; rows of another version are never compared.
ROW_SCHEMA_VERSION = 1


class Status(StrEnum):
    """How a measurement ended. String-valued: a row on disk holds the plain word."""

    #: measured
    OK = "ok"
    #: measured with too few samples for a confidence interval: real numbers, not certain
    #: ones (``message`` says why)
    FEW_SAMPLES = "few-samples"
    #: out of memory (a result, not a failure)
    OOM = "OOM"
    #: any other failure (``message`` says)
    ERROR = "error"
    #: a compare group stopped after some rounds (``n_samples`` of them), which
    #: ``suite run --resume`` completes
    PARTIAL = "partial"
    #: a runtime backend's output off eager's beyond the dtype's tolerance
    MISMATCH = "mismatch"
    #: an operation the backend cannot run (``message`` names it)
    UNSUPPORTED = "unsupported"


STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
#: Samples a 95% interval of the median needs (:func:`hilobench.measure.stats.ci_min_samples`,
#: kept here as a number so that reading rows never imports NumPy): fewer give ``few-samples``.
CI_MIN_SAMPLES = 6
#: Statuses whose rows hold measured numbers: counted as results, never as failures.
MEASURED: tuple[str, ...] = (Status.OK, Status.FEW_SAMPLES)


def is_measured(row: Mapping[str, Any], default: str = "") -> bool:
    """Whether ``row`` holds measured numbers (``ok`` or ``few-samples``); ``default`` is the
    status assumed where the row has none (a baseline's figures carry no status)."""
    return row.get("status", default) in MEASURED


class Row(TypedDict, total=False):
    """Every column a row may carry. Identity columns come from the Case before anything is
    measured (:func:`hilobench.run.engine.base_row`); the rest appear as the measurement gets that
    far, so a failed row keeps what was measured before it failed."""

    # identity: what was measured
    schema: int
    case_key: str
    kind: str
    name: str
    attention: str
    impl: str
    mode: str
    res: str
    tokens: str
    batch: int
    device: str
    dtype: str
    threads: int | None
    compile: bool
    backend: str
    channels_last: bool
    options: dict[str, Any]
    case: dict[str, Any]
    env_id: str
    # provenance: the code that measured, and how
    hilobench_version: str
    git_commit: str | None
    git_dirty: bool | None
    isolated: bool
    # outcome
    status: Status
    message: str
    traceback: str
    # counts
    params: int
    macs: int | None
    macs_traced: int
    uncounted_ops: list[str]
    layers_per_call: int
    fused_is_reference: bool
    fused_kernel: str | None  # the kernel(s) the fused path chose: sdpa, matmul, onednn
    # dense-prediction heads (model rows with a head): the head, whether its post-processing
    # is timed, the detection post-processing settings, MACs per part and ops not counted
    head: str
    postprocess_timed: bool
    det_score_thresh: float | None
    det_nms_thresh: float | None
    det_per_img: int | None
    macs_parts: dict[str, int]
    macs_ignored_ops: list[str]
    macs_analytic: int | None
    # memory
    peak_mem_bytes: int
    peak_rss_bytes: int | None
    # --max-batch: the largest batch within a memory limit, and the probes that found it
    max_batch: int
    mem_limit_bytes: int
    max_batch_fail: int | None
    max_batch_stop: str
    max_batch_probes: list[dict[str, Any]]
    # timing: per-layer samples and their summary
    samples_s: list[float]
    calls_per_sample: int
    warmup_calls: int
    budget_capped: bool
    n_samples: int
    throughput_median: float
    throughput_ci_low: float
    throughput_ci_high: float
    latency_ms_p50: float
    latency_ms_p90: float
    latency_ms_iqr: float
    cov: float
    noisy: bool
    compile_s: float
    # energy over the timing loop (measure/energy.py): joules per image, counter, seconds
    energy_j_per_image: float | None
    energy_counter: str
    energy_s: float
    graph_capture_s: float
    # runtime backends: preparation (export, compile) apart from the timed step, what the step
    # covers, parity with eager on the case's input, the exported path of deformable merging
    prepare_s: float
    backend_timed: str
    backend_max_rel_err: float
    backend_tolerance: float
    onnx_opset: int
    dtm_path: str
    mem_source: str
    wall_s: float
    budgeted_s: float
    # roofline: the achieved MAC rate against the device's GEMM peak
    achieved_macs_per_s: float | None
    roofline: float | None
    # precision policy (measure/precision.py): the float32 math that ran, and cuDNN autotuning
    precision_policy: str
    tf32_matmul: bool
    tf32_cudnn: bool
    cudnn_benchmark: bool
    # why the step is as fast as it is (measure/bound.py, docs/bound.md): the bound and its
    # shares, the traced bytes of one call and the copy bandwidth peak they are judged against
    bound: str | None
    bound_busy: float
    bound_compute: float | None
    bound_memory: float | None
    traced_bytes: int
    peak_bytes_per_s: float | None
    bound_note: str
    # compare groups: members timed together, ratios to the reference member
    interleaved: bool
    group: str
    group_wall_s: float
    ref: str
    ref_key: str | None
    ratio_to_ref: float
    ratio_ci_low: float
    ratio_ci_high: float
    ratio_n: int
    ratio_frac_faster: float | None
    # suite runs
    suite: str
    suite_hash: str
    case_id: str
    # cluster runs: the scheduler job that measured, its node and the CPUs it was allocated
    job_id: str
    job_node: str
    job_cpus: int | None
    # the regression gate: both revisions measured in blocks of turns
    round_group: str
    blocks: int
    sample_blocks: list[int]
    test_slowdown: float
    remeasure_samples_s: list[float]
    remeasure_sample_blocks: list[int]


#: Columns every stored row has, failed or not.
REQUIRED_COLUMNS = (
    "schema", "case_key", "kind", "name", "attention", "impl", "mode", "res", "tokens", "batch",
    "device", "dtype", "threads", "compile", "channels_last", "options", "case", "env_id",
    "status", "message",
)  # fmt: skip

#: Columns of the tables derived from the rows, in display order.
ROW_COLUMNS = (
    "kind", "name", "attention", "impl", "mode", "res", "tokens", "batch", "device", "dtype",
    "threads", "compile", "backend", "channels_last", "params", "macs", "macs_traced",
    "uncounted_ops",
    "throughput_median", "throughput_ci_low", "throughput_ci_high", "latency_ms_p50",
    "latency_ms_p90", "latency_ms_iqr", "cov", "noisy", "n_samples", "peak_mem_bytes",
    "peak_rss_bytes", "max_batch", "mem_limit_bytes", "achieved_macs_per_s", "roofline",
    "precision_policy", "bound", "bound_busy", "bound_compute", "bound_memory", "status",
    "message", "case_key", "env_id",
)  # fmt: skip
