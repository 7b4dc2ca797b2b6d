"""Dtype names → torch dtypes, and the precision policy applied to torch's backend flags.

The names themselves (what a Case accepts) are ``hilobench.core.case.DTYPES``; this module is apart
because it imports torch and case.py must not. ``tf32`` computes in float32 tensors with TF32
math; what each name means is :mod:`hilobench.measure.precision`.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from hilobench.core.case import DTYPES
from hilobench.core.errors import ConfigError
from hilobench.measure.precision import Flags, flags_for, is_cuda, policy_columns

#: The tensor dtype each name computes in (``tf32`` is float32 storage, TF32 math).
TORCH_DTYPES: dict[str, torch.dtype] = {
    name: torch.float32 if name == "tf32" else getattr(torch, name) for name in DTYPES
}


def check_precision(dtype: str, device: str) -> None:
    """Refuse a dtype the device has no kernels for, in one line."""
    if dtype == "float16" and not is_cuda(device):
        raise ConfigError(
            "dtype 'float16' is supported on cuda only; on cpu use float32 or bfloat16"
        )
    if dtype == "tf32" and not is_cuda(device):
        raise ConfigError(
            "dtype 'tf32' is a CUDA tensor-core mode; on cpu float32 is already the only "
            "float32 math: use float32 (or bfloat16)"
        )


def autocast(
    dtype: str, device: str, graphs: bool = False
) -> contextlib.AbstractContextManager[Any]:
    """The autocast of ``dtype`` (none for float32 and tf32). Under CUDA-graph capture
    (``graphs``) without autocast's weight-cast cache, which would outlive the capture."""
    if TORCH_DTYPES[dtype] == torch.float32:
        return contextlib.nullcontext()
    kind = device.split(":")[0]
    return torch.autocast(kind, dtype=TORCH_DTYPES[dtype], cache_enabled=not graphs)


def current_flags() -> Flags:
    """The backend flags in effect now, as torch reports them."""
    return Flags(
        tf32_matmul=torch.get_float32_matmul_precision() != "highest"
        or bool(torch.backends.cuda.matmul.allow_tf32),
        tf32_cudnn=bool(torch.backends.cudnn.allow_tf32),
        cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
    )


def apply_precision(dtype: str, device: str) -> dict[str, Any]:
    """Set torch's TF32 and cuDNN flags to the policy of ``dtype`` on ``device`` and return
    the row columns that say what is now in effect. Cheap (attribute sets, ~1 µs), so a
    step calls it before each run: interleaved members of different dtypes each get theirs."""
    want = flags_for(dtype, device)
    torch.set_float32_matmul_precision(want.matmul_precision)
    torch.backends.cuda.matmul.allow_tf32 = want.tf32_matmul
    torch.backends.cudnn.allow_tf32 = want.tf32_cudnn
    if is_cuda(device):
        torch.backends.cudnn.benchmark = want.cudnn_benchmark
    got = current_flags()
    if is_cuda(device):
        return policy_columns(dtype, device, got)
    # on the CPU only the matmul precision acts; cuDNN flags are recorded as not applying
    return policy_columns(dtype, device, Flags(got.tf32_matmul, False, False))
