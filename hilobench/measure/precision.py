"""The precision policy: what ``--dtype`` means for every kernel, named in each row and title.

PyTorch's defaults are asymmetric: on CUDA, convolutions run on TF32 tensor cores
(``cudnn.allow_tf32`` is on) while matmuls run in IEEE FP32 (``matmul.allow_tf32`` off). A
"float32" comparison of a CNN against a transformer under those defaults compares TF32
convolutions with FP32 matmuls. hilobench sets both flags from the dtype instead:

==========  ====================  ==============================================================
dtype       policy                what runs
==========  ====================  ==============================================================
float32     ``fp32``              IEEE FP32 everywhere: matmul precision "highest", cuDNN TF32 off
tf32        ``tf32``              TF32 for matmuls and convolutions (CUDA only; refused on CPU)
bfloat16    ``amp-bf16``          autocast to bfloat16; ops autocast keeps in FP32 run IEEE FP32
float16     ``amp-fp16``          autocast to float16 (CUDA); FP32 leftovers run IEEE FP32
==========  ====================  ==============================================================

``cudnn.benchmark`` is on for CUDA steps (its autotuning happens on the memory pass, the first
call, before any timed sample) and recorded per row. Rows written before the policy existed are
labelled from the flags their run recorded (``env.json``), e.g. ``fp32+tf32conv`` for PyTorch's
defaults on CUDA: what they actually ran. This module imports no torch: readers of stored rows
use it; :mod:`hilobench.measure.dtypes` applies the policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Autocast dtypes and their policy names.
AUTOCAST = {"bfloat16": "amp-bf16", "float16": "amp-fp16"}
#: Policy names by (TF32 matmuls, TF32 convolutions) for float32 compute.
FP32_NAMES = {
    (False, False): "fp32",
    (True, True): "tf32",
    (False, True): "fp32+tf32conv",
    (True, False): "fp32+tf32mm",
}
#: Row columns the policy fills (old rows get them from their run's env.json).
COLUMNS = ("precision_policy", "tf32_matmul", "tf32_cudnn", "cudnn_benchmark")


@dataclass(frozen=True)
class Flags:
    """The torch backend flags a dtype asks for on a device."""

    tf32_matmul: bool
    tf32_cudnn: bool
    cudnn_benchmark: bool

    @property
    def matmul_precision(self) -> str:
        """``torch.set_float32_matmul_precision``'s word for ``tf32_matmul``."""
        return "high" if self.tf32_matmul else "highest"


def is_cuda(device: str) -> bool:
    return str(device).startswith("cuda")


def flags_for(dtype: str, device: str) -> Flags:
    """The flags the policy sets: TF32 on only for the ``tf32`` dtype; cuDNN autotuning on
    CUDA (on the CPU the cuDNN flags do nothing, and are recorded as off)."""
    tf32 = dtype == "tf32"
    cuda = is_cuda(device)
    return Flags(tf32_matmul=tf32, tf32_cudnn=tf32 and cuda, cudnn_benchmark=cuda)


def policy_name(dtype: str, device: str, tf32_matmul: bool, tf32_cudnn: bool) -> str:
    """The policy a step ran under, from its dtype and the flags in effect. TF32 flags mean
    nothing on the CPU (its float32 kernels are IEEE), so a CPU float32 step is ``fp32``."""
    if dtype in AUTOCAST:
        return AUTOCAST[dtype]
    if not is_cuda(device):
        return "fp32"
    return FP32_NAMES[(bool(tf32_matmul), bool(tf32_cudnn))]


def policy_columns(dtype: str, device: str, flags: Flags) -> dict[str, Any]:
    """Row columns of a step run under ``flags`` (read back from torch, not assumed)."""
    return {
        "precision_policy": policy_name(dtype, device, flags.tf32_matmul, flags.tf32_cudnn),
        "tf32_matmul": flags.tf32_matmul,
        "tf32_cudnn": flags.tf32_cudnn,
        "cudnn_benchmark": flags.cudnn_benchmark,
    }


def label_legacy(rows: Iterable[dict[str, Any]], env: Mapping[str, Any]) -> None:
    """Give rows measured before the policy existed the policy they actually ran, from the
    flags their run recorded; rows that carry one, or a run without the flags, are left as
    they are."""
    if "tf32_matmul" not in env or "tf32_cudnn" not in env:
        return
    for row in rows:
        if row.get("precision_policy") or "dtype" not in row:
            continue
        device = str(row.get("device") or env.get("device") or "cpu")
        row["precision_policy"] = policy_name(
            str(row["dtype"]), device, bool(env["tf32_matmul"]), bool(env["tf32_cudnn"])
        )
        row["tf32_matmul"] = bool(env["tf32_matmul"])
        row["tf32_cudnn"] = bool(env["tf32_cudnn"])
        row["cudnn_benchmark"] = bool(env.get("cudnn_benchmark", False))
