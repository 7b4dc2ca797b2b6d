"""Twins-SVT attention: locally-grouped (LSA), global sub-sampled (GSA), and the T-MSA pair.

Twins alternates the two block by block, so a fair single-layer figure for "T-MSA" measures one
LSA followed by one GSA and reports half of it per layer (``layers_per_call = 2``).
"""

from __future__ import annotations

import torch

from hilobench.attention.base import Attention
from hilobench.attention.registry import register_attention
from hilobench.attention.sra import SpatialReductionAttention
from hilobench.attention.window import WindowAttention
from hilobench.core.case import check_impl


@register_attention(
    "lsa",
    "Twins locally-grouped attention (window attention, no bias, no shift)",
    knobs={"window": 7},
)
class LocallyGroupedAttention(WindowAttention):
    """Twins' LSA: W-MSA without relative position bias and without shift.

    Same parameter names as :class:`WindowAttention`, so its weights load into either.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        impl: str = "reference",
        window: int = 7,
    ) -> None:
        super().__init__(dim, num_heads, qkv_bias, impl, window=window, shift=0, rel_pos=False)


@register_attention(
    "gsa",
    "Twins global sub-sampled attention (= PVT spatial-reduction attention)",
    knobs={"sr": 2},
)
def global_subsampled_attention(
    dim: int,
    num_heads: int,
    qkv_bias: bool = True,
    impl: str = "reference",
    sr_ratio: int = 2,
) -> SpatialReductionAttention:
    """Twins' GSA is PVT's SRA (strided-conv reduction + LayerNorm), so it is built as one."""
    return SpatialReductionAttention(dim, num_heads, qkv_bias, impl, sr_ratio=sr_ratio)


@register_attention(
    "tmsa",
    "Twins-SVT T-MSA: one LSA then one GSA (figures reported per layer)",
    knobs={"window": 7, "sr": 2},
)
class TwinsPair(Attention):
    """One LSA followed by one GSA: ``y = gsa(lsa(x))``, as Twins alternates them.

    ``layers_per_call = 2``: timings and counts of one call cover two layers, and callers
    divide by it to report per-layer figures. :meth:`macs` returns the pair's total (LSA + GSA),
    not the per-layer half. Setting ``.impl`` on the pair also sets it on both children.
    """

    layers_per_call = 2

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        impl: str = "reference",
        window: int = 7,
        sr_ratio: int = 2,
    ) -> None:
        super().__init__(dim, num_heads, qkv_bias, impl)
        self.lsa = LocallyGroupedAttention(dim, num_heads, qkv_bias, impl, window=window)
        self.gsa = SpatialReductionAttention(dim, num_heads, qkv_bias, impl, sr_ratio=sr_ratio)

    @property
    def impl(self) -> str:
        return self._impl

    @impl.setter
    def impl(self, value: str) -> None:
        self._impl = check_impl(value)
        # children do not exist yet while the base constructor sets the first value
        for child in self.children():
            if isinstance(child, Attention):
                child.impl = value

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        return self.gsa(self.lsa(x, H, W), H, W)

    def macs(self, H: int, W: int) -> int:
        """Both layers' MACs together; per-layer figures divide by ``layers_per_call``."""
        return self.lsa.macs(H, W) + self.gsa.macs(H, W)

    def score_elements(self, H: int, W: int) -> int:
        """The larger of the two layers' attention matrices: they run one after the other."""
        return max(self.lsa.score_elements(H, W), self.gsa.score_elements(H, W))
