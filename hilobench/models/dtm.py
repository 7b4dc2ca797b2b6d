"""Deformable token merging (DTM): LITv1/LITv2's downsampling between stages.

A 2×2 stride-2 deformable convolution (DCNv1: one offset group, no modulation) whose sampling
offsets come from a 2×2 stride-2 conv with ``2·2·2 = 8`` channels, then BatchNorm and GELU. The
offset conv starts at zero, so at initialisation DTM equals an ordinary stride-2 conv; training
learns where each merged token samples from.

Like the official LITv2 backbones (a 2×2 stride-2 deformable conv without padding), an odd side
loses its last row/column: the output is ``floor(H/2) × floor(W/2)``. ``pad_odd=True``
zero-pads odd sides to even first instead (``ceil``), which keeps the border but is not the
published model.

Deformable convolution is much slower than a plain one on CPUs, so ``mode="conv"`` swaps it for
the plain stride-2 conv with the same weight and bias (no offset conv). That variant is a
speed/ablation probe, NOT the paper's model; its state dict is the deformable one minus
``offset.*``.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import deform_conv2d

from hilobench.core.errors import ConfigError
from hilobench.models.blocks import BATCHNORM_MACS, ceil_div, pad_to_multiple, to_map, to_tokens
from hilobench.models.dtm_sample import deform_conv2d_sampled

DTM_MODES = ("deform", "conv")


class DeformableTokenMerging(nn.Module):
    """Halve the token map and map ``in_dim`` to ``out_dim`` channels.

    The output is ``floor(H/2) × floor(W/2)`` (an odd last row/column is dropped, as in the
    official code), or ``ceil(H/2) × ceil(W/2)`` with ``pad_odd=True``, which zero-pads odd sides
    right/bottom first.
    """

    kernel = 2
    #: how the deformable conv runs: torchvision's kernel ("deform_conv2d"), or its exact
    #: decomposition into bilinear grid_sample (a runtime backend selects it for export)
    export_path = "deform_conv2d"

    def __init__(
        self, in_dim: int, out_dim: int, mode: str = "deform", pad_odd: bool = False
    ) -> None:
        super().__init__()
        if mode not in DTM_MODES:
            raise ConfigError(f"unknown dtm {mode!r}; choose from: {', '.join(DTM_MODES)}")
        if not isinstance(pad_odd, bool):
            raise ConfigError(f"pad_odd must be true or false, got {pad_odd!r}")
        self.in_dim, self.out_dim, self.mode, self.pad_odd = in_dim, out_dim, mode, pad_odd
        k = self.kernel
        # weight/bias of the (deformable) conv; deform_conv2d takes them as plain tensors
        self.conv = nn.Conv2d(in_dim, out_dim, k, stride=k)
        offset: nn.Conv2d | None = None
        if mode == "deform":
            offset = nn.Conv2d(in_dim, 2 * k * k, k, stride=k)
            nn.init.zeros_(offset.weight)
            if offset.bias is not None:  # always: the conv is built with a bias
                nn.init.zeros_(offset.bias)
        self.offset = offset
        self.norm = nn.BatchNorm2d(out_dim)
        self.act = nn.GELU()

    def extra_repr(self) -> str:
        return f"mode={self.mode}, pad_odd={self.pad_odd}"

    def out_size(self, H: int, W: int) -> tuple[int, int]:
        """Output map size; raises ConfigError for a side that would merge to nothing."""
        k = self.kernel
        if self.pad_odd:
            return ceil_div(H, k), ceil_div(W, k)
        if H < k or W < k:
            raise ConfigError(
                f"token merging needs a map of at least {k}x{k}, got {H}x{W} (it rounds down, "
                "as the official model does); use a larger input"
            )
        return H // k, W // k

    def forward(self, x: torch.Tensor, H: int, W: int) -> tuple[torch.Tensor, int, int]:
        """Tokens ``(B, H*W, in_dim)`` → ``(B, h*w, out_dim)`` and the new ``(h, w)``."""
        self.out_size(H, W)  # rejects a map that would merge to nothing
        m = to_map(x, H, W)
        if self.pad_odd:
            m = pad_to_multiple(m, self.kernel)
        if self.offset is not None:
            offset = self.offset(m)
            if self.export_path == "grid_sample":
                m = deform_conv2d_sampled(m, offset, self.conv.weight, self.conv.bias, self.kernel)
            elif m.device.type == "cpu" and m.dtype in (torch.bfloat16, torch.float16):
                # torchvision has no reduced-precision CPU kernel for deform_conv2d: run this one
                # op in float32 (as autocast does for ops it has no low-precision kernel for)
                w, b = self.conv.weight.float(), self.conv.bias
                out = deform_conv2d(m.float(), offset.float(), w, None if b is None else b.float(),
                                    stride=self.kernel)  # fmt: skip
                m = out.to(m.dtype)
            else:
                m = deform_conv2d(m, offset, self.conv.weight, self.conv.bias, stride=self.kernel)
        else:
            m = self.conv(m)
        m = self.act(self.norm(m))
        h, w = m.shape[-2:]
        return to_tokens(m), h, w

    def macs(self, H: int, W: int) -> int:
        """The (deformable) conv as a dense conv, the offset conv, and eval-mode BatchNorm.

        The bilinear sampling inside the deformable conv is not charged: it is data movement
        the paper's count leaves out, and it makes ``deform`` and ``conv`` count alike.
        """
        h, w = self.out_size(H, W)
        k2 = self.kernel**2
        total = h * w * self.out_dim * (self.in_dim * k2 + BATCHNORM_MACS)
        if self.offset is not None:
            total += h * w * self.offset.out_channels * self.in_dim * k2
        return total
