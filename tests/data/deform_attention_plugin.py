"""A test attention whose forward uses torchvision's deform_conv2d natively: an operation that
ONNX Runtime cannot run at opset 18, so its runtime rows must say ``unsupported``."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import deform_conv2d

from hilobench.attention import Attention, register_attention


@register_attention("deform_probe", "a 2x2 deformable conv over the token map (tests only)")
class DeformProbe(Attention):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, impl: str = "reference"):
        super().__init__(dim, num_heads, qkv_bias, impl)
        self.weight = nn.Parameter(torch.randn(dim, dim, 2, 2) * 0.1)
        self.offset = nn.Conv2d(dim, 8, 2, stride=2)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        B, N, C = x.shape
        m = x.transpose(1, 2).reshape(B, C, H, W)
        out = deform_conv2d(m, self.offset(m), self.weight, None, stride=2)
        return out.flatten(2).transpose(1, 2)

    def macs(self, H: int, W: int) -> int:
        n = (H // 2) * (W // 2)
        return n * self.dim * self.dim * 4 + n * 8 * self.dim * 4
