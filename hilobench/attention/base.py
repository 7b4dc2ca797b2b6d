"""The attention contract every layer follows: ``forward(x, H, W)`` and analytic ``macs(H, W)``."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hilobench.attention import kernels
from hilobench.core import options
from hilobench.core.case import IMPLS, check_impl

__all__ = ["IMPLS", "Attention", "check_window", "set_impl"]


class Attention(nn.Module):
    """Base of all attention layers.

    ``x`` is ``(B, H*W, C)``; the output has the same shape. ``impl`` selects the published
    formulation (explicit matmul + softmax) or the fused ``scaled_dot_product_attention`` path;
    both use the same parameters, so state dicts load into either. ``impl`` also tells the
    layer's :class:`~hilobench.attention.kernels.Linear` projections whether to take the
    measured GEMM choice (fused) or ``F.linear`` (reference), also those assigned later.
    """

    #: How many attention layers one forward call runs (Twins' T-MSA pair runs two), so that
    #: per-layer figures can be reported.
    layers_per_call: int = 1

    #: True when this layer has no softmax attention for ``scaled_dot_product_attention``, so its
    #: ``fused`` implementation runs the reference computation (rows say ``fused_is_reference``).
    fused_is_reference: bool = False

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, impl: str = "reference"):
        super().__init__()
        options.check("dim", dim)
        options.check("heads", num_heads)
        options.check_together("layer", {"dim": dim, "heads": num_heads})
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.impl = impl

    @property
    def impl(self) -> str:
        return self._impl

    @impl.setter
    def impl(self, value: str) -> None:
        self._impl = check_impl(value)
        kernels.mark_fused(self, value == "fused")

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if isinstance(value, nn.Module) and "_impl" in self.__dict__:  # a child built later
            kernels.mark_fused(value, self._impl == "fused")

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def macs(self, H: int, W: int) -> int:  # pragma: no cover
        """Multiply-accumulates of one image (batch 1) on an ``H x W`` token map."""
        raise NotImplementedError

    def score_elements(self, H: int, W: int) -> int:
        """Attention-score elements of one image on an ``H x W`` map, summed over heads (the
        size of the attention matrix the reference path materialises). Global attention here;
        layers that attend to fewer keys say so."""
        n = H * W
        return self.num_heads * n * n


def check_window(window: object) -> int:
    """Validate a window size (the ``window`` knob's check); return it as int."""
    return int(options.check("window", window))


def set_impl(module: nn.Module, impl: str) -> nn.Module:
    """Switch every attention inside ``module`` to ``impl`` (reference or fused)."""
    check_impl(impl)
    for m in module.modules():
        if isinstance(m, Attention):
            m.impl = impl
    return module
