"""Dense-prediction models: a four-stage backbone, an FPN neck and a head, timed end to end.

The paper's detection and segmentation FPS rows time whole models at batch 1: RetinaNet and
Mask R-CNN at 1280x800 (``--res 800x1280``, height first), Semantic FPN at 512x512. The heads
are torchvision's (``weights=None``: random weights, nothing is downloaded) over our
:mod:`~hilobench.models.features` adapters:

* **RetinaNet**: FPN over stages 2-4 (strides 8-32) plus P6/P7 computed from the last stage's
  map, five levels, 80 COCO classes.
* **Mask R-CNN**: FPN over all four stages plus a max-pooled P6, an RPN, box and mask heads,
  80 COCO classes plus background.
* **Semantic FPN**: :mod:`~hilobench.models.semfpn`, 150 ADE20K classes.

Detection inputs are measured at exactly the requested size: the model's transform only
normalises and batches (no resizing; a side not divisible by 32 is zero-padded as usual).

Post-processing (box decoding, score filtering, NMS, the top-k per image, mask pasting) runs
inside the timed call, as in a deployed detector. With random weights the scores carry no
meaning, and a trained model's usual score threshold (0.05) would keep an arbitrary number of
boxes (RetinaNet's prior bias puts nearly every score under it, so almost none): the second
stage of Mask R-CNN and the NMS would then cost whatever the weights happen to give. So the
score threshold is 0.0 (every candidate passes) and each image keeps a fixed
``DETECTIONS_PER_IMG`` = 100 boxes (the COCO evaluation cap), which random boxes always fill
after NMS: every call does the work of a trained detector at its cap, and the count is
constant from call to call and from backbone to backbone. The row records these settings.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hilobench.core.errors import ConfigError
from hilobench.models.features import FeatureBackbone, build_features

#: The heads, as the ``head`` knob names them ("none" in the options table is the backbone).
HEADS = ("retinanet", "maskrcnn", "semfpn")
DETECTION_HEADS = ("retinanet", "maskrcnn")
FPN_CHANNELS = 256
COCO_CLASSES = 80
#: Detection post-processing: every score passes, NMS at IoU 0.5, a fixed 100 boxes per image.
SCORE_THRESH = 0.0
NMS_THRESH = 0.5
DETECTIONS_PER_IMG = 100
#: Mask R-CNN's RPN: top 1000 proposals per level before its NMS (IoU 0.7), 1000 kept after.
RPN_PROPOSALS = 1000


@dataclass(frozen=True)
class HeadSettings:
    """What a dense row records about its head (row columns of the same names)."""

    head: str
    postprocess_timed: bool
    det_score_thresh: float | None = None
    det_nms_thresh: float | None = None
    det_per_img: int | None = None

    def columns(self) -> dict[str, Any]:
        return dict(self.__dict__)


class FeaturesWithFPN(nn.Module):
    """Backbone maps ``levels`` → FPN (with ``extra`` levels) → 256-channel maps."""

    def __init__(
        self, body: FeatureBackbone, levels: tuple[str, ...], extra: nn.Module | None
    ) -> None:
        from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork

        super().__init__()
        self.body, self.levels = body, levels
        chans = [body.out_channels[int(k)] for k in levels]
        self.fpn = FeaturePyramidNetwork(chans, FPN_CHANNELS, extra_blocks=extra)
        self.out_channels = FPN_CHANNELS

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        feats = self.body(x)
        out: OrderedDict[str, torch.Tensor] = self.fpn(
            OrderedDict((k, feats[k]) for k in self.levels)
        )
        return out


def _fixed_transform(res: tuple[int, int]) -> nn.Module:
    """torchvision's detection transform that normalises and batches but never resizes."""
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    class FixedSizeTransform(GeneralizedRCNNTransform):
        def resize(
            self, image: torch.Tensor, target: dict[str, torch.Tensor] | None = None
        ) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
            return image, target

    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    return FixedSizeTransform(min(res), max(res), mean, std)


class DenseModel(nn.Module):
    """``(B, 3, H, W)`` → the head's output; ``parts`` names the modules whose MACs are split
    out (backbone, backbone + neck), ``settings`` what the row records."""

    def __init__(self, net: nn.Module, neck: FeaturesWithFPN, settings: HeadSettings) -> None:
        super().__init__()
        self.net = net
        self.detection = settings.head in DETECTION_HEADS
        self.settings = settings
        self.neck_ref = [neck]  # a list: the same modules, not registered twice
        #: Mask R-CNN's RPN proposals kept per image (its box head's batch); 0 for the others
        self.proposals = 0

    @property
    def backbone_with_fpn(self) -> FeaturesWithFPN:
        return self.neck_ref[0]

    def forward(self, x: torch.Tensor) -> Any:
        return self.net(list(x)) if self.detection else self.net(x)


def build_dense(
    name: str,
    head: str,
    *,
    res: tuple[int, int],
    impl: str,
    mode: str = "infer",
    detections: int = DETECTIONS_PER_IMG,
    proposals: int = RPN_PROPOSALS,
    **opts: Any,
) -> DenseModel:
    """Model ``name``'s four-stage backbone under ``head`` for ``res`` images (random init).
    ``detections`` per image and Mask R-CNN's RPN ``proposals`` (before and after its NMS)
    are the paper's settings by default; smaller values make small, quick models for tests."""
    if head not in HEADS:
        raise ConfigError(f"unknown head {head!r}; choose from: none, {', '.join(HEADS)}")
    if mode != "infer":
        raise ConfigError(f"a {head} head is measured at inference only, not mode {mode!r}")
    body = build_features(name, res=res, impl=impl, **opts)
    if head == "semfpn":
        from hilobench.models.semfpn import SemanticFPN

        neck = FeaturesWithFPN(body, ("0", "1", "2", "3"), None)
        return DenseModel(
            SemanticFPN(neck, FPN_CHANNELS), neck, HeadSettings(head, postprocess_timed=True)
        )
    from torchvision.models.detection import MaskRCNN, RetinaNet  # ~1 s: detection only
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

    post: dict[str, Any]
    if head == "retinanet":
        # P6 from the last stage's map itself (its width differs from the FPN's 256)
        neck = FeaturesWithFPN(body, ("1", "2", "3"), LastLevelP6P7(body.out_channels[-1], 256))
        post = dict(score_thresh=SCORE_THRESH, nms_thresh=NMS_THRESH)
        post["detections_per_img"] = detections
        net: nn.Module = RetinaNet(neck, COCO_CLASSES, **post)
    else:
        neck = FeaturesWithFPN(body, ("0", "1", "2", "3"), LastLevelMaxPool())
        post = dict(box_score_thresh=SCORE_THRESH, box_nms_thresh=NMS_THRESH)
        post["box_detections_per_img"] = detections
        post["rpn_pre_nms_top_n_test"] = post["rpn_post_nms_top_n_test"] = proposals
        net = MaskRCNN(neck, COCO_CLASSES + 1, **post)
    net.transform = _fixed_transform(res)
    settings = HeadSettings(head, True, SCORE_THRESH, NMS_THRESH, detections)
    model = DenseModel(net, neck, settings)
    model.proposals = proposals if head == "maskrcnn" else 0
    return model
