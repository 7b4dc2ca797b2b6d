"""Semantic FPN (Kirillov et al., Panoptic FPN's semantic branch) for 512x512 ADE20K inputs.

An FPN turns the backbone's four stage maps into four 256-channel maps (strides 4 to 32). Each
map goes through as many ``3x3 conv → BatchNorm → ReLU → 2x upsample`` steps as it takes to
reach stride 4 (one conv and no upsampling for the stride-4 map), at 128 channels; the four
branches are summed, a 1x1 conv gives one logit per class (150 for ADE20K), and the logits are
upsampled bilinearly to the input size, which is the model's output (what mIoU is judged on).
Each upsampling step goes to the next finer map's exact size, so sides that are not multiples
of 32 still line up.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hilobench.models.blocks import members

#: ADE20K's classes, the paper's segmentation benchmark.
ADE20K_CLASSES = 150
#: Channels of the semantic branches (the Semantic FPN setting of the segmentation toolboxes).
SEMANTIC_CHANNELS = 128


class _ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
        )


class SemanticHead(nn.Module):
    """Four FPN maps (finest first) → class logits at the finest map's size."""

    def __init__(
        self,
        in_channels: int,
        levels: int = 4,
        channels: int = SEMANTIC_CHANNELS,
        num_classes: int = ADE20K_CLASSES,
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.ModuleList(
                _ConvBNReLU(in_channels if j == 0 else channels, channels) for j in range(max(1, i))
            )
            for i in range(levels)
        )
        self.dropout = nn.Dropout2d(0.1)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        total: torch.Tensor | None = None
        branches = members(self.branches, nn.ModuleList)
        for i, (x, convs) in enumerate(zip(feats, branches, strict=True)):
            for j, conv in enumerate(members(convs, _ConvBNReLU)):
                x = conv(x)
                if i > 0:  # up one level: to the exact size of the next finer map
                    size = feats[i - 1 - j].shape[-2:]
                    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            total = x if total is None else total + x
        assert total is not None
        return self.classifier(self.dropout(total))


class SemanticFPN(nn.Module):
    """Backbone with FPN → :class:`SemanticHead` → logits upsampled to the input size."""

    def __init__(
        self, backbone: nn.Module, channels: int, num_classes: int = ADE20K_CLASSES
    ) -> None:
        """``backbone``: image → four maps of ``channels`` channels (an FPN), finest first."""
        super().__init__()
        self.backbone = backbone
        self.head = SemanticHead(channels, num_classes=num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = list(self.backbone(x).values())
        logits = self.head(feats)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
