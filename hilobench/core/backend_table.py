"""The runtimes a case can run under: one table, :data:`BACKENDS`, read by the flags, the suite
fields and :mod:`hilobench.backends` (which imports a runtime's module only when it is used).
Apart from the knob table in :mod:`hilobench.core.options`: a runtime is not a knob of a layer
or a model but the way a case is run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backend:
    """A runtime a case can run under (``--backend``, a suite's ``backend:``): its module is
    ``hilobench/backends/<name>.py``; ``needs`` are the packages the ``extra`` installs."""

    name: str
    help: str
    devices: tuple[str, ...] = ("cpu", "cuda")
    dtypes: tuple[str, ...] = ("float32", "bfloat16", "float16")
    train: bool = False  # runtimes run inference only
    extra: str = ""
    needs: tuple[str, ...] = ()


#: The backends, in the order lists show them; adding a runtime: one file and one line here.
BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("eager", "PyTorch eager", train=True),
    Backend("compile", "torch.compile (compile time reported apart)", train=True),
    Backend("onnxruntime", "ONNX export (dynamo, opset 18), ONNX Runtime session",
            dtypes=("float32",), extra="onnx", needs=("onnx", "onnxscript", "onnxruntime")),
    Backend("openvino", "ONNX export compiled by OpenVINO for the CPU", devices=("cpu",),
            dtypes=("float32",), extra="openvino", needs=("onnx", "onnxscript", "openvino")),
    Backend("tensorrt", "torch_tensorrt engine", devices=("cuda",), dtypes=("float32", "float16"),
            extra="tensorrt", needs=("torch_tensorrt",)),
)}  # fmt: skip
