"""Backbones built for one image size (LITv1, Focal-Tiny): the stage builder that sizes each
stage's attention to its map at that size, the size keywords they share, and the refusal of any
other input size (their position tables or windows follow the maps they were built for)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, TypedDict, Unpack

from hilobench.attention.base import Attention
from hilobench.core.errors import ConfigError
from hilobench.models.blocks import (
    Block,
    ClassifierHead,
    Downsample,
    HierarchicalNet,
    Mlp,
    PatchEmbed,
    Stage,
)


class FixedResOptions(TypedDict, total=False):
    """The keywords every :class:`FixedResNet` takes: the image size it is built for, the
    attention implementation, and its sizes (each size left out is :data:`SMALL`'s)."""

    res: tuple[int, int]
    impl: str
    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    mlp_ratio: int
    num_classes: int
    in_chans: int


#: The -S / Tiny sizes (Swin-T's layout) at 224×224: widths 96·2^i, depths 2/2/6/2, heads
#: 3/6/12/24, MLP ratio 4, and the reference attention.
SMALL: FixedResOptions = {
    "res": (224, 224),
    "impl": "reference",
    "embed_dim": 96,
    "depths": (2, 2, 6, 2),
    "num_heads": (3, 6, 12, 24),
    "mlp_ratio": 4,
    "num_classes": 1000,
    "in_chans": 3,
}


class FixedResNet(HierarchicalNet, ABC):
    """4×4 patch embedding, stages of widths ``embed·2^i`` (a :meth:`downsample`, then
    ``depths[i]`` pre-norm blocks of :meth:`attention` and an MLP), classifier head; built for
    ``res = (H, W)`` images only.

    A subclass sets what its two methods read before calling this ``__init__``, and names
    itself (``display``) and what ties it to ``res`` (``tied_by``) for the refusal of another
    size."""

    display: ClassVar[str]
    tied_by: ClassVar[str]

    def __init__(self, **options: Unpack[FixedResOptions]) -> None:
        unknown = sorted(options.keys() - SMALL.keys())
        if unknown:  # as a plain signature would: a misspelt size must not build the default
            raise TypeError(f"{type(self).__name__} got unexpected keyword(s): {unknown}")
        size = SMALL | options
        self.res = (int(size["res"][0]), int(size["res"][1]))
        self.impl = size["impl"]
        patch_embed = PatchEmbed(size["in_chans"], size["embed_dim"], 4)
        depths, mlp_ratio = size["depths"], size["mlp_ratio"]
        dims = [size["embed_dim"] * 2**i for i in range(len(depths))]
        h, w = patch_embed.out_size(*self.res)
        stages = []
        for i, (dim, depth, heads) in enumerate(zip(dims, depths, size["num_heads"], strict=True)):
            down = self.downsample(dims[i - 1], dim) if i else None
            if down is not None:
                h, w = down.out_size(h, w)
            blocks = [
                Block(dim, self.attention(i, dim, heads, (h, w)), Mlp(dim, mlp_ratio * dim))
                for _ in range(depth)
            ]
            stages.append(Stage(blocks, down))
        super().__init__(patch_embed, stages, ClassifierHead(dims[-1], size["num_classes"]))
        self.dims = dims

    @abstractmethod
    def attention(self, stage: int, dim: int, heads: int, hw: tuple[int, int]) -> Attention | None:
        """The attention of one block of stage ``stage`` (0-based) on its ``hw`` map (None: an
        MLP-only block)."""

    @abstractmethod
    def downsample(self, in_dim: int, out_dim: int) -> Downsample:
        """The downsampling that opens every stage after the first."""

    def check_size(self, H: int, W: int) -> None:
        if (int(H), int(W)) != self.res:
            raise ConfigError(
                f"{self.display} was built for {self.res[0]}x{self.res[1]} images "
                f"({self.tied_by}) and cannot take {H}x{W}; build it for that size"
            )
