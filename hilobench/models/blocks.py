"""Building blocks shared by the hilobench backbones (LITv1, LITv2, PVT, CvT, Focal).

Every module here takes tokens ``(B, H*W, C)`` plus the map size and exposes ``macs(H, W)``, so a
whole backbone has an analytic count that can be checked against a traced one.

Counting convention (the project's): multiply-accumulates of matmuls and convolutions (a
deformable conv as the dense conv of its shape), LayerNorm charged ``LAYERNORM_MACS`` per element
and BatchNorm in eval mode ``BATCHNORM_MACS`` per element, as fvcore charges them; biases,
activations, softmax, pooling, residual adds and padding are free. So ``macs()`` equals
``hilobench.measure.flops.count_macs(model.eval(), x, count_norms=True)`` exactly. (In train mode
fvcore charges BatchNorm 5 per element instead, so trace in eval mode.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar, cast

import torch
import torch.nn.functional as F
from torch import nn

from hilobench.attention.base import Attention

#: fvcore's charge for an affine LayerNorm: mean, variance, normalise, scale, shift.
LAYERNORM_MACS = 5
#: fvcore's charge for an affine BatchNorm in eval mode (a folded scale and shift).
BATCHNORM_MACS = 2


_M = TypeVar("_M", bound=nn.Module)


def members(modules: nn.ModuleList, kind: type[_M]) -> list[_M]:
    """The modules of ``modules``, typed as ``kind``.

    ``nn.ModuleList`` is untyped (it yields ``nn.Module``); every list in these models holds a
    single kind, fixed by its constructor's signature, so this is only a statement of type.
    """
    return cast("list[_M]", list(modules))


def ceil_div(a: int, b: int) -> int:
    """Size of a side after a stride-``b`` layer on a map padded up to a multiple of ``b``."""
    return -(-a // b)


def to_map(x: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """Tokens ``(B, H*W, C)`` to a map ``(B, C, H, W)``."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], H, W)


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """Map ``(B, C, H, W)`` to tokens ``(B, H*W, C)``."""
    return x.flatten(2).transpose(1, 2)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad a map right/bottom so both sides divide ``multiple`` (dense-prediction style)."""
    H, W = x.shape[-2:]
    pad_h, pad_w = (-H) % multiple, (-W) % multiple
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))
    return x


class Mlp(nn.Module):
    """Plain transformer FFN ``fc1 → GELU → fc2`` (LITv1, PVT; CvT passes its own ``act``)."""

    def __init__(self, dim: int, hidden: int, act: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.dim, self.hidden = dim, hidden
        self.fc1 = nn.Linear(dim, hidden)
        self.act = act()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))

    def macs(self, H: int, W: int) -> int:
        return 2 * H * W * self.dim * self.hidden


class ConvFFN(nn.Module):
    """LITv2 FFN ``fc1 → depthwise 3×3 conv → GELU → fc2``.

    The depthwise conv gives the network its only positional cue, which is why LITv2 needs no
    position embeddings and runs at any resolution with the same weights.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.dim, self.hidden = dim, hidden
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=True)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        x = self.fc1(x)
        x = to_tokens(self.dwconv(to_map(x, H, W)))
        return self.fc2(self.act(x))

    def macs(self, H: int, W: int) -> int:
        n = H * W
        return 2 * n * self.dim * self.hidden + n * self.hidden * 9


class Block(nn.Module):
    """Pre-norm transformer block ``x + attn(LN(x))``, then ``x + ffn(LN(x))``.

    ``attn=None`` gives an FFN-only block (LITv1/LITv2 stages 1–2), which has no first norm.
    ``attn`` follows the attention contract: ``attn(x, H, W)`` and ``attn.macs(H, W)``.
    """

    def __init__(self, dim: int, attn: Attention | None, ffn: Mlp | ConvFFN) -> None:
        super().__init__()
        self.dim = dim
        self.norm1 = nn.LayerNorm(dim) if attn is not None else None
        self.attn = attn
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = ffn

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        if self.attn is not None and self.norm1 is not None:  # both or neither (``__init__``)
            x = x + self.attn(self.norm1(x), H, W)
        return x + self.ffn(self.norm2(x), H, W)

    def macs(self, H: int, W: int) -> int:
        n = H * W
        total = LAYERNORM_MACS * n * self.dim + self.ffn.macs(H, W)
        if self.attn is not None:
            total += LAYERNORM_MACS * n * self.dim + self.attn.macs(H, W)
        return total


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch×patch`` conv (stride = patch), then LayerNorm.

    The input is zero-padded right/bottom to a multiple of ``patch`` first, so any image size
    maps to ``ceil(H/patch) × ceil(W/patch)`` tokens instead of silently dropping a border.
    """

    def __init__(self, in_chans: int, dim: int, patch: int = 4) -> None:
        super().__init__()
        self.in_chans, self.dim, self.patch = in_chans, dim, patch
        self.proj = nn.Conv2d(in_chans, dim, patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def out_size(self, H: int, W: int) -> tuple[int, int]:
        return ceil_div(H, self.patch), ceil_div(W, self.patch)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """Map ``(B, C_in, H, W)`` to tokens ``(B, h*w, dim)`` and ``(h, w)``."""
        x = self.proj(pad_to_multiple(x, self.patch))
        h, w = x.shape[-2:]
        return self.norm(to_tokens(x)), h, w

    def macs(self, H: int, W: int) -> int:
        h, w = self.out_size(H, W)
        return h * w * self.dim * (self.in_chans * self.patch**2 + LAYERNORM_MACS)


class ClassifierHead(nn.Module):
    """LayerNorm → global average over tokens → linear classifier (averaging is not counted)."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.dim, self.num_classes = dim, num_classes
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        return self.fc(self.norm(x).mean(dim=1))

    def macs(self, H: int, W: int) -> int:
        return LAYERNORM_MACS * H * W * self.dim + self.dim * self.num_classes


class Downsample(Protocol):
    """What a :class:`Stage` needs of its downsampling layer (e.g. deformable token merging):
    tokens ``(B, H*W, C)`` in, tokens and the new map size out, and the analytic count."""

    def __call__(self, x: torch.Tensor, H: int, W: int) -> tuple[torch.Tensor, int, int]: ...

    def out_size(self, H: int, W: int) -> tuple[int, int]: ...

    def macs(self, H: int, W: int) -> int: ...


class Stage(nn.Module):
    """Optional downsampling (token merging) followed by blocks at one scale."""

    def __init__(self, blocks: Sequence[Block], downsample: Downsample | None = None) -> None:
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.ModuleList(blocks)

    def out_size(self, H: int, W: int) -> tuple[int, int]:
        return self.downsample.out_size(H, W) if self.downsample is not None else (H, W)

    def forward(self, x: torch.Tensor, H: int, W: int) -> tuple[torch.Tensor, int, int]:
        if self.downsample is not None:
            x, H, W = self.downsample(x, H, W)
        for block in self.blocks:
            x = block(x, H, W)
        return x, H, W

    def macs(self, H: int, W: int) -> int:
        total = self.downsample.macs(H, W) if self.downsample is not None else 0
        h, w = self.out_size(H, W)
        return total + sum(block.macs(h, w) for block in members(self.blocks, Block))


class HierarchicalNet(nn.Module):
    """Patch embedding → stages → classifier head: the LITv1/LITv2 skeleton.

    ``forward`` returns logits; ``forward_features`` returns each stage's map ``(B, C, h, w)``
    (what a detection or segmentation neck consumes); ``macs(H, W)`` is the analytic count of
    ``forward`` on one ``H×W`` image.
    """

    def __init__(
        self, patch_embed: PatchEmbed, stages: Sequence[Stage], head: ClassifierHead
    ) -> None:
        super().__init__()
        self.patch_embed = patch_embed
        self.stages = nn.ModuleList(stages)
        self.head = head
        self.apply(init_weights)

    def check_size(self, H: int, W: int) -> None:
        """Raise for an image size the model cannot take; any size works by default."""

    def stage_sizes(self, H: int, W: int) -> list[tuple[int, int]]:
        """Token map ``(h, w)`` of each stage for an ``H×W`` image (no computation)."""
        self.check_size(H, W)
        sizes = []
        h, w = self.patch_embed.out_size(H, W)
        for stage in members(self.stages, Stage):
            h, w = stage.out_size(h, w)
            sizes.append((h, w))
        return sizes

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per-stage feature maps ``(B, C_i, h_i, w_i)`` for dense prediction."""
        self.check_size(*x.shape[-2:])
        out = []
        x, H, W = self.patch_embed(x)
        for stage in self.stages:
            x, H, W = stage(x, H, W)
            out.append(to_map(x, H, W))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_size(*x.shape[-2:])
        x, H, W = self.patch_embed(x)
        for stage in self.stages:
            x, H, W = stage(x, H, W)
        return self.head(x, H, W)

    def body_macs(self, H: int, W: int) -> tuple[int, int, int]:
        """Analytic MACs of one ``H×W`` image up to the head (patch embedding and stages), and
        the last stage's map size: the count a feature backbone reports."""
        self.check_size(H, W)
        total = self.patch_embed.macs(H, W)
        h, w = self.patch_embed.out_size(H, W)
        for stage in members(self.stages, Stage):
            total += stage.macs(h, w)
            h, w = stage.out_size(h, w)
        return total, h, w

    def macs(self, H: int, W: int) -> int:
        """Analytic MACs of one ``H×W`` image (the convention in this module's docstring)."""
        total, h, w = self.body_macs(H, W)
        return total + self.head.macs(h, w)


def init_weights(m: nn.Module) -> None:
    """Truncated-normal linears with zero bias, unit/zero norms (the usual ViT init)."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
