"""ONNX Runtime: the module exported to ONNX, run by an InferenceSession.

The session uses ``intra_op_num_threads`` = the case's threads (one inter-op thread, no
spinning of idle pool threads: they would take the cores from the next thing timed), the CPU
execution provider on ``cpu`` and CUDA's on ``cuda``. Inputs and outputs are bound once with
an IO binding to the case's own torch tensors on the device, so the timed step is
``run_with_iobinding`` alone: no host copies, no per-call allocation of outputs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort  # ~0.3 s, only when a case runs under ONNX Runtime
import torch
from torch import nn

from hilobench.backends import Prepared, register_backend
from hilobench.backends.onnx_export import export, unsupported_op
from hilobench.core.case import Case
from hilobench.core.errors import ConfigError

#: ONNX element types of the outputs this backend binds, as numpy and torch see them.
_TYPES = {
    "tensor(float)": (np.float32, torch.float32),
    "tensor(float16)": (np.float16, torch.float16),
    "tensor(int64)": (np.int64, torch.int64),
}


def _session(path: Path, case: Case) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = torch.get_num_threads()  # the case's threads, set before the build
    so.inter_op_num_threads = 1
    # its pool's threads spin for a while after each run: whatever runs next on these cores
    # (the next case, or eager in an interleaved group) would pay for them
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3  # errors only: no per-node placement chatter
    provider = "CUDAExecutionProvider" if case.device.startswith("cuda") else "CPUExecutionProvider"
    if provider not in ort.get_available_providers():
        raise ConfigError(
            f"this onnxruntime has no {provider}; on cuda install onnxruntime-gpu instead"
        )
    opts: dict[str, Any] = {}
    if provider == "CUDAExecutionProvider":
        opts["device_id"] = torch.device(case.device).index or 0
    try:
        return ort.InferenceSession(str(path), so, providers=[(provider, opts)])
    except Exception as exc:
        found = unsupported_op(exc, "onnxruntime")
        if found is None:
            raise
        raise found from exc


@register_backend("onnxruntime")
def prepare(
    module: nn.Module, inputs: tuple[Any, ...], case: Case, eager_step: Callable[[], Any]
) -> Prepared:
    with tempfile.TemporaryDirectory(prefix="hilobench-onnx-") as tmp:
        path = Path(tmp) / "model.onnx"
        cols = export(module, inputs, "onnxruntime", path)
        sess = _session(path, case)  # holds the graph in memory: the file can go
    tensors = [a.contiguous() for a in inputs if isinstance(a, torch.Tensor)]
    if len(sess.get_inputs()) != len(tensors):
        raise RuntimeError(
            f"the exported graph takes {len(sess.get_inputs())} inputs, the module {len(tensors)}"
        )
    dev = torch.device(case.device)
    kind, index = ("cuda" if dev.type == "cuda" else "cpu"), dev.index or 0
    binding = sess.io_binding()
    for meta, t in zip(sess.get_inputs(), tensors, strict=True):
        binding.bind_input(
            meta.name, kind, index, _TYPES[meta.type][0], list(t.shape), t.data_ptr()
        )
    outs = []
    for meta in sess.get_outputs():
        if meta.type not in _TYPES or not all(isinstance(d, int) for d in meta.shape):
            raise RuntimeError(f"output {meta.name}: cannot bind {meta.type} {meta.shape}")
        out = torch.empty(meta.shape, dtype=_TYPES[meta.type][1], device=dev)
        binding.bind_output(
            meta.name, kind, index, _TYPES[meta.type][0], list(out.shape), out.data_ptr()
        )
        outs.append(out)

    def step(keep: Any = tensors) -> list[torch.Tensor]:  # keep: the bound input memory
        sess.run_with_iobinding(binding)
        return outs

    provider = sess.get_providers()[0]
    timed = (
        f"onnxruntime {ort.__version__} InferenceSession.run_with_iobinding ({provider}), "
        "inputs and outputs bound"
    )
    return Prepared(step, list, {**cols, "backend_timed": timed})
