"""PyTorch eager: the reference every other backend is checked against; the step as built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from hilobench.backends import Prepared, register_backend, tensors_of
from hilobench.core.case import Case


@register_backend("eager")
def prepare(
    module: nn.Module, inputs: tuple[Any, ...], case: Case, eager_step: Callable[[], Any]
) -> Prepared:
    what = "training step" if case.mode == "train" else "module call"
    return Prepared(eager_step, tensors_of, {"backend_timed": f"{what} (PyTorch eager)"})
