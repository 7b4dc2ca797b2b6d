"""TensorRT (CUDA only): the module compiled by ``torch_tensorrt`` (dynamo IR) into an engine
at the case's input shapes, in the case's precision; the timed step calls the compiled module
on the resident inputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch_tensorrt  # seconds to import, only when a case runs under TensorRT
from torch import nn

from hilobench.backends import Prepared, register_backend, tensors_of
from hilobench.backends.onnx_export import _Fixed, exact_paths
from hilobench.core.case import Case
from hilobench.measure.dtypes import TORCH_DTYPES


@register_backend("tensorrt")
def prepare(
    module: nn.Module, inputs: tuple[Any, ...], case: Case, eager_step: Callable[[], Any]
) -> Prepared:
    dtype = TORCH_DTYPES[case.dtype]
    tensors = [a.to(dtype) for a in inputs if isinstance(a, torch.Tensor)]
    with exact_paths(module) as cols:  # grid_sample has a TensorRT layer, deform_conv2d none
        net = _Fixed(module.to(dtype), inputs).eval()
        engine = torch_tensorrt.compile(
            net, ir="dynamo", inputs=tensors, enabled_precisions={dtype}, truncate_double=True
        )

    def step() -> Any:
        with torch.inference_mode():
            return engine(*tensors)

    timed = f"torch_tensorrt engine call ({case.dtype}), inputs resident on the GPU"
    return Prepared(step, tensors_of, {**cols, "backend_timed": timed})
