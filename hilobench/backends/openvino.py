"""OpenVINO: the module exported to ONNX, compiled for the CPU.

Compiled with ``INFERENCE_NUM_THREADS`` = the case's threads, one stream, and the inference
precision hint set to the case's dtype (OpenVINO computes float32 models in bfloat16 on CPUs
that have it unless told otherwise, which would be another precision than the row says). The
input tensors share memory with the case's torch tensors and are set once on an infer request;
the timed step is ``InferRequest.infer()`` alone, its outputs kept in the request.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openvino as ov  # ~0.5 s, only when a case runs under OpenVINO
import torch
from torch import nn

from hilobench.backends import Prepared, register_backend
from hilobench.backends.onnx_export import export, unsupported_op
from hilobench.core.case import Case

#: The inference precision hint of each dtype this backend runs.
PRECISION = {"float32": "f32"}


@register_backend("openvino")
def prepare(
    module: nn.Module, inputs: tuple[Any, ...], case: Case, eager_step: Callable[[], Any]
) -> Prepared:
    core = ov.Core()
    config = {
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),  # the case's threads
        "NUM_STREAMS": 1,
        "INFERENCE_PRECISION_HINT": PRECISION[case.dtype],
    }
    with tempfile.TemporaryDirectory(prefix="hilobench-openvino-") as tmp:
        path = Path(tmp) / "model.onnx"
        cols = export(module, inputs, "openvino", path)
        try:
            compiled = core.compile_model(core.read_model(path), "CPU", config)
        except Exception as exc:
            found = unsupported_op(exc, "openvino")
            if found is None:
                raise
            raise found from exc
    request = compiled.create_infer_request()
    tensors = [a.contiguous() for a in inputs if isinstance(a, torch.Tensor)]
    for i, t in enumerate(tensors):
        request.set_input_tensor(i, ov.Tensor(t.numpy(), shared_memory=True))
    n_out = len(compiled.outputs)

    def step(keep: Any = tensors) -> ov.InferRequest:  # keep: the shared input memory
        request.infer()
        return request

    def outputs(req: ov.InferRequest) -> list[torch.Tensor]:
        return [torch.from_numpy(req.get_output_tensor(i).data.copy()) for i in range(n_out)]

    hint = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()  # e.g. f32
    version = ov.__version__.split("-")[0]
    timed = f"openvino {version} InferRequest.infer() (CPU, precision {hint}), inputs set once"
    return Prepared(step, outputs, {**cols, "backend_timed": timed})
