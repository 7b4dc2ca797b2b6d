"""Backbones run under CPU bfloat16 autocast, deformable token merging included."""

from __future__ import annotations

import torch

from hilobench.models.dtm import DeformableTokenMerging


def test_deformable_merging_under_cpu_bf16_autocast() -> None:
    torch.manual_seed(0)
    dtm = DeformableTokenMerging(8, 16).eval()
    x = torch.randn(2, 8 * 8, 8)
    with torch.inference_mode():
        ref, h, w = dtm(x, 8, 8)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low, h2, w2 = dtm(x.bfloat16(), 8, 8)
    assert (h, w) == (h2, w2) == (4, 4)
    assert low.dtype == torch.bfloat16
    assert torch.allclose(low.float(), ref, atol=0.1, rtol=0.05)
