"""torch.compile: the module's forward compiled in place, so the same step (inference or a
training step) runs the compiled graph; the first call, which compiles, is ``prepare_s``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from hilobench.backends import Prepared, register_backend, tensors_of
from hilobench.core.case import Case


@register_backend("compile")
def prepare(
    module: nn.Module, inputs: tuple[Any, ...], case: Case, eager_step: Callable[[], Any]
) -> Prepared:
    module.forward = torch.compile(module.forward)
    what = "training step" if case.mode == "train" else "module call"
    return Prepared(
        eager_step, tensors_of, {"backend_timed": f"{what} (torch.compile, default mode)"}
    )
