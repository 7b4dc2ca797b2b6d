"""A built module → an ONNX file (the dynamo exporter, opset 18), for ONNX Runtime and OpenVINO.

The module is exported as the case runs it: on its device, in eval mode, at the case's input
shapes (static: the case has one shape). Non-tensor arguments (a layer's token map H, W) are
fixed into the graph. The export traces without autograd (``torch.no_grad``): the graph is for
inference, and a traced graph that records gradients takes other decompositions (DAT's
attention, whose mask is computed from a parameter, exported a view of mismatched strides).
Modules that have an exact decomposition for export select it here
(LITv2's deformable token merging: bilinear ``grid_sample``), and the row says which path was
exported. A failure names the operation that could not be exported or run.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hilobench.backends import Unsupported, tensors_of

#: ONNX opset of the export: 18 is the newest that ONNX Runtime and OpenVINO both run in full.
OPSET = 18
#: ONNX op → the torch operation it comes from, for messages that name what the user wrote.
TORCH_OP = {"DeformConv": "torchvision::deform_conv2d"}
#: Where runtimes and the exporter name an operation they cannot handle.
_OP_PATTERNS = (
    r"No Op registered for (\w+)",
    r"Could not find an implementation for (\w+)",
    r"No conversion rule found for operations: ([\w\-.]+)",
    r"No ONNX function found for <OpOverload\(op='([\w.:]+)'",
    r"[Uu]nsupported (?:FX )?(?:nodes|operator)[^'\"]*['\"]([\w.:]+)",
)


class _Fixed(nn.Module):
    """The module with its non-tensor arguments fixed: forward takes the tensors only and
    returns the tensors of the output, in the order parity reads them."""

    def __init__(self, module: nn.Module, inputs: tuple[Any, ...]):
        super().__init__()
        self.module = module
        self.template = inputs

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        it = iter(tensors)
        out = self.module(*(next(it) if isinstance(a, torch.Tensor) else a for a in self.template))
        return tuple(tensors_of(out))  # the tensors only: a graph has no integer outputs


@contextlib.contextmanager
def exact_paths(module: nn.Module) -> Iterator[dict[str, Any]]:
    """Select each submodule's exact export path for the duration; yields the row columns
    that say which (``dtm_path``), none for a module without such submodules."""
    from hilobench.models.dtm import DeformableTokenMerging  # torchvision, imported by models

    dtms = [
        m
        for m in module.modules()
        if isinstance(m, DeformableTokenMerging) and m.offset is not None
    ]
    for m in dtms:
        m.export_path = "grid_sample"
    try:
        yield {"dtm_path": "grid_sample (exact deform_conv2d decomposition)"} if dtms else {}
    finally:
        for m in dtms:
            del m.export_path  # back to the class default, torchvision's kernel


def unsupported_op(exc: BaseException, backend: str) -> Unsupported | None:
    """An :class:`Unsupported` naming the op ``exc`` reports, None if it names none."""
    text = str(exc)
    for pattern in _OP_PATTERNS:
        m = re.search(pattern, text)
        if m:
            op = m.group(1).removesuffix("-18")
            shown = f"{TORCH_OP[op]} (ONNX {op})" if op in TORCH_OP else op
            return Unsupported(f"unsupported: {shown} under {backend}")
    return None


def export(module: nn.Module, inputs: tuple[Any, ...], backend: str, path: Path) -> dict[str, Any]:
    """Write ``module`` called on ``inputs`` to ``path``; the row columns of the export."""
    tensors = tuple(a for a in inputs if isinstance(a, torch.Tensor))
    with exact_paths(module) as cols, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # the exporter's progress lines go nowhere; no_grad: an inference graph
            with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
                program = torch.onnx.export(
                    _Fixed(module, inputs), tensors, dynamo=True, opset_version=OPSET
                )
            assert program is not None
            program.save(str(path))
        except Exception as exc:
            found = unsupported_op(exc, backend)
            if found is None:
                raise
            raise found from exc
    return {"onnx_opset": OPSET, **cols}
