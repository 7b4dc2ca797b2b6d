"""Four-stage feature backbones for dense prediction: one adapter per family.

A detection or segmentation neck consumes the maps of a backbone's four stages (strides 4, 8,
16, 32). Each adapter here wraps one family and returns them as an ``OrderedDict`` of NCHW maps
keyed ``"0"``..``"3"`` (the names torchvision's FPN and RoI pooling expect), with their channel
counts in ``out_channels``. The classifier (final norm, class token, linear) is left out, so
params and MACs are those of the feature extractor only.

* LITv2 (built here): its patch embedding and stages; no position embeddings, any size.
* PVT (built here): position embeddings sized to the case's image; the last stage runs without
  the class token, reading its stage embedding past the class slot, as PVT's dense backbone does.
* ResNet and Swin (timm, ``features_only=True``): timm's Swin returns NHWC maps, permuted here.

Importing this module lets the models in :data:`FEATURE_BUILDERS` take the ``head`` knob.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hilobench.core.errors import ConfigError
from hilobench.models.blocks import Block, PatchEmbed, members, to_map
from hilobench.models.litv2 import LITv2, litv2
from hilobench.models.pvt import PVT, pvt
from hilobench.models.registry import add_options
from hilobench.models.zoo import TIMM_MIN_SIDE, set_timm_impl

#: Names of the four maps, finest first (torchvision's default RoI-pooling feature names).
LEVELS = ("0", "1", "2", "3")


class FeatureBackbone(nn.Module):
    """Image ``(B, 3, H, W)`` → ``OrderedDict`` of four NCHW maps; ``out_channels`` per map."""

    out_channels: list[int]

    def maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict(zip(LEVELS, self.maps(x), strict=True))


class HierarchicalFeatures(FeatureBackbone):
    """LITv2: its patch embedding and stages, without the classifier."""

    def __init__(self, net: LITv2, res: tuple[int, int]) -> None:
        super().__init__()
        net.check_size(*res)
        del net.head  # the classifier (final norm, linear) is no part of a feature backbone
        self.net = net
        self.out_channels = [int(d) for d in net.dims]

    def maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net.forward_features(x)

    def map_sizes(self, H: int, W: int) -> list[tuple[int, int]]:
        return self.net.stage_sizes(H, W)

    def macs(self, H: int, W: int) -> int:
        """Analytic MACs of the maps of one ``H×W`` image: the net's count without its head."""
        return self.net.body_macs(H, W)[0]


class PVTFeatures(FeatureBackbone):
    """PVT's patch embeddings, position embeddings and stages, for the size it was built for."""

    def __init__(self, net: PVT) -> None:
        super().__init__()
        self.res, self.padded = net.res, net.padded
        self.patch_embeds = net.patch_embeds
        self.pos_embeds = net.pos_embeds
        self.stages = net.stages
        self.out_channels = list(net.dims)

    def maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        pad_h, pad_w = self.padded[0] - x.shape[-2], self.padded[1] - x.shape[-1]
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        out = []
        stages = members(self.stages, nn.ModuleList)
        for embed, pos, blocks in zip(self.patch_embeds, self.pos_embeds, stages, strict=True):
            x, H, W = embed(x)
            x = x + pos[:, pos.shape[1] - H * W :]  # the last stage's class slot is skipped
            for block in members(blocks, Block):
                x = block(x, H, W)
            x = to_map(x, H, W)
            out.append(x)
        return out

    def map_sizes(self, H: int, W: int) -> list[tuple[int, int]]:
        h, w = self.padded
        sizes = []
        for embed in members(self.patch_embeds, PatchEmbed):
            h, w = embed.out_size(h, w)
            sizes.append((h, w))
        return sizes

    def macs(self, H: int, W: int) -> int:
        """Analytic MACs of the maps of one image of the built size (no class token)."""
        total, (h, w) = 0, self.padded
        stages = members(self.stages, nn.ModuleList)
        for embed, blocks in zip(members(self.patch_embeds, PatchEmbed), stages, strict=True):
            total += embed.macs(h, w)
            h, w = embed.out_size(h, w)
            total += sum(block.macs(h, w) for block in members(blocks, Block))
        return total


class TimmFeatures(FeatureBackbone):
    """A timm model created with ``features_only=True``; NHWC outputs (Swin) become NCHW."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        info: Any = net.feature_info
        self.out_channels = [int(c) for c in info.channels()]
        self.nhwc = str(getattr(net, "output_fmt", "NCHW")).endswith("NHWC")

    def maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = list(self.net(x))
        return [o.permute(0, 3, 1, 2) for o in outs] if self.nhwc else outs


def _litv2(size: str) -> Callable[..., FeatureBackbone]:
    def build(*, res: tuple[int, int], impl: str, **opts: Any) -> FeatureBackbone:
        return HierarchicalFeatures(litv2(size, impl=impl, num_classes=0, res=res, **opts), res)

    return build


def _pvt(size: str) -> Callable[..., FeatureBackbone]:
    def build(*, res: tuple[int, int], impl: str, **opts: Any) -> FeatureBackbone:
        return PVTFeatures(pvt(size, res=res, impl=impl, num_classes=0, **opts))

    return build


def _timm(timm_name: str, indices: tuple[int, ...], sized: bool) -> Callable[..., FeatureBackbone]:
    """``sized``: the model takes ``img_size`` (Swin's windows and masks depend on it)."""

    def build(*, res: tuple[int, int], impl: str, **_: Any) -> FeatureBackbone:
        if min(res) < TIMM_MIN_SIDE:
            raise ConfigError(
                f"{res[0]}x{res[1]} is too small for {timm_name!r} features: each side needs "
                f"at least {TIMM_MIN_SIDE} pixels"
            )
        import timm  # seconds to import: only a timm backbone needs it

        kwargs: dict[str, Any] = {"img_size": tuple(res)} if sized else {}
        net = timm.create_model(
            timm_name, pretrained=False, features_only=True, out_indices=indices, **kwargs
        )
        return TimmFeatures(set_timm_impl(net, impl))

    return build


#: Model name → builder of its four-stage feature backbone (``res``, ``impl``, model knobs).
FEATURE_BUILDERS: dict[str, Callable[..., FeatureBackbone]] = {
    "litv2_s": _litv2("s"),
    "litv2_m": _litv2("m"),
    "litv2_b": _litv2("b"),
    "pvt_s": _pvt("s"),
    "pvt_m": _pvt("m"),
    "resnet50": _timm("resnet50", (1, 2, 3, 4), sized=False),
    "resnet101": _timm("resnet101", (1, 2, 3, 4), sized=False),
    "swin_t": _timm("swin_tiny_patch4_window7_224", (0, 1, 2, 3), sized=True),
    "swin_s": _timm("swin_small_patch4_window7_224", (0, 1, 2, 3), sized=True),
}


def build_features(name: str, *, res: tuple[int, int], impl: str, **opts: Any) -> FeatureBackbone:
    """The feature backbone of model ``name``; ConfigError for a model without one."""
    builder = FEATURE_BUILDERS.get(name)
    if builder is None:
        raise ConfigError(
            f"model {name!r} has no four-stage feature backbone for a dense head; "
            f"choose from: {', '.join(FEATURE_BUILDERS)}"
        )
    return builder(res=res, impl=impl, **opts)


for _name in FEATURE_BUILDERS:
    add_options(_name, "head")

__all__ = ["FEATURE_BUILDERS", "LEVELS", "FeatureBackbone", "build_features"]
