"""Deformable convolution as bilinear ``grid_sample`` + one matmul: DTM's exact export path.

``torchvision.ops.deform_conv2d`` exports to ONNX ``DeformConv`` (opset 19), which neither
ONNX Runtime nor OpenVINO runs at opset 18. Every piece of this decomposition (``GridSample``,
``MatMul``) they do run, so LITv2's deformable token merging keeps its deformable semantics
under a runtime instead of being swapped for a plain conv. It reproduces torchvision's
sampling: a point at ``(y, x)`` interpolates its four neighbours bilinearly, a neighbour
outside the map counts as zero (``padding_mode="zeros"``), and the pixel grid maps to
``grid_sample``'s ``[-1, 1]`` by pixel centres (``align_corners=False``), which holds for any
map size, one pixel wide included.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def deform_conv2d_sampled(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: int,
) -> torch.Tensor:
    """``deform_conv2d(x, offset, weight, bias, stride=stride)`` (no padding, dilation 1, one
    offset group, no mask), computed by sampling each kernel tap with ``grid_sample``.

    ``offset`` is ``(B, 2·kh·kw, Ho, Wo)`` with (dy, dx) pairs per tap in row-major tap order,
    torchvision's layout."""
    b, c, h, w = x.shape
    out_ch, _, kh, kw = weight.shape
    ho, wo = offset.shape[-2:]
    dev, dt = x.device, x.dtype
    base_y = (torch.arange(ho, device=dev, dtype=dt) * stride).view(1, ho, 1)
    base_x = (torch.arange(wo, device=dev, dtype=dt) * stride).view(1, 1, wo)
    taps = []
    for i in range(kh):
        for j in range(kw):
            k = i * kw + j
            y = base_y + i + offset[:, 2 * k]  # (B, Ho, Wo) in pixels
            xs = base_x + j + offset[:, 2 * k + 1]
            # pixel p sits at normalised (2p + 1) / size - 1 when align_corners=False
            grid = torch.stack(((2 * xs + 1) / w - 1, (2 * y + 1) / h - 1), dim=-1)
            taps.append(
                F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            )
    cols = torch.stack(taps, dim=2).reshape(b, c * kh * kw, ho * wo)  # (B, C·kh·kw, Ho·Wo)
    out = torch.matmul(weight.reshape(out_ch, c * kh * kw), cols)
    if bias is not None:
        out = out + bias.view(1, out_ch, 1)
    return out.view(b, out_ch, ho, wo)
