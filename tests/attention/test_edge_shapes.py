"""Odd-map and head-split edge cases, with shapes computed by hand from the official LITv2 code.

HiLo splits heads with ``int(heads·alpha)``; SRA's reduction conv and deformable token merging
round odd maps down (``pad_odd=True`` rounds up); HiLo pads to its window. Analytic MACs must
follow the same shapes, so each case also checks analytic == traced.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hilobench.attention import build_attention
from hilobench.attention.hilo import HiLo, lofi_heads
from hilobench.attention.sra import SpatialReductionAttention
from hilobench.core.errors import ConfigError
from hilobench.measure.flops import count_macs, layer_macs
from hilobench.models import LITv2
from hilobench.models.dtm import DeformableTokenMerging

DIM = 32


def tokens(H: int, W: int, dim: int = DIM) -> torch.Tensor:
    return torch.randn(1, H * W, dim)


def seq_len_into(module: nn.Module, layer: nn.Module, *args) -> int:
    """Sequence length of the first input that ``layer`` sees during ``module(*args)``."""
    seen = []
    handle = layer.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape[1]))
    try:
        with torch.no_grad():
            module(*args)
    finally:
        handle.remove()
    return seen[0]


# --- HiLo head split --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "heads, alpha, l_heads",
    [(50, 0.58, 28), (100, 0.29, 28), (12, 0.58, 6), (12, 0.9, 10), (10, 0.7, 7), (4, 1.0, 4)],
)
def test_hilo_lofi_heads_truncate(heads, alpha, l_heads):
    assert lofi_heads(heads, alpha) == l_heads


def test_hilo_50_heads_dims():
    layer = HiLo(100, 50, window=2, alpha=0.58)  # head_dim 2
    assert (layer.l_heads, layer.h_heads, layer.l_dim, layer.h_dim) == (28, 22, 56, 44)
    assert layer.l_q.out_features == 56 and layer.h_qkv.out_features == 3 * 44


# --- HiLo on odd maps: padded like the official dense-prediction code --------------------------


@pytest.mark.parametrize("window, kv", [(2, 8 * 7), (4, 4 * 4)])
def test_hilo_lofi_pools_the_padded_map(window, kv):
    layer = HiLo(DIM, 4, window=window, alpha=0.5).eval()
    assert seq_len_into(layer, layer.l_kv, tokens(15, 13), 15, 13) == kv  # ceil(15/s)·ceil(13/s)
    assert layer_macs(layer, 15, 13).total == layer.macs(15, 13)


# --- SRA ----------------------------------------------------------------------------------------


def test_sra_odd_map_rounds_down():
    layer = SpatialReductionAttention(DIM, 4, sr_ratio=2).eval()
    assert layer.kv_size(15, 13) == (7, 6)
    assert seq_len_into(layer, layer.kv, tokens(15, 13), 15, 13) == 7 * 6
    with torch.no_grad():
        assert layer(tokens(15, 13), 15, 13).shape == (1, 15 * 13, DIM)
    assert layer_macs(layer, 15, 13).total == layer.macs(15, 13)


@pytest.mark.parametrize("sr, kv", [(2, (8, 7)), (4, (4, 4))])
def test_sra_pad_odd_rounds_up(sr, kv):
    layer = SpatialReductionAttention(DIM, 4, sr_ratio=sr, pad_odd=True).eval()
    assert layer.kv_size(15, 13) == kv
    assert seq_len_into(layer, layer.kv, tokens(15, 13), 15, 13) == kv[0] * kv[1]
    assert layer_macs(layer, 15, 13).total == layer.macs(15, 13)


def test_sra_floor_with_sr4_and_twins_gsa():
    assert SpatialReductionAttention(DIM, 4, sr_ratio=4).kv_size(15, 13) == (3, 3)
    gsa = build_attention("gsa", DIM, 4, sr_ratio=2)  # Twins' GSA is SRA: rounds down too
    assert gsa.kv_size(15, 13) == (7, 6)
    assert layer_macs(gsa, 15, 13).total == gsa.macs(15, 13)


def test_sra_map_smaller_than_ratio():
    layer = SpatialReductionAttention(DIM, 4, sr_ratio=2)
    with pytest.raises(ConfigError, match="at least 2x2"):
        layer.macs(1, 5)
    with pytest.raises(ConfigError, match="at least 2x2"):
        layer(tokens(1, 5), 1, 5)
    assert SpatialReductionAttention(DIM, 4, sr_ratio=2, pad_odd=True).kv_size(1, 5) == (1, 3)
    with pytest.raises(ConfigError, match="pad_odd"):
        SpatialReductionAttention(DIM, 4, pad_odd="yes")


# --- deformable token merging -------------------------------------------------------------------


class TokensOnly(nn.Module):
    """Drops DTM's ``(h, w)`` outputs so the tracer sees tensors only."""

    def __init__(self, dtm: DeformableTokenMerging) -> None:
        super().__init__()
        self.dtm = dtm

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        return self.dtm(x, H, W)[0]


@pytest.mark.parametrize("mode", ["deform", "conv"])
@pytest.mark.parametrize("pad_odd, hw", [(False, (7, 6)), (True, (8, 7))])
def test_dtm_odd_map(mode, pad_odd, hw):
    dtm = DeformableTokenMerging(DIM, 2 * DIM, mode, pad_odd=pad_odd).eval()
    assert dtm.out_size(15, 13) == hw
    with torch.no_grad():
        y, h, w = dtm(tokens(15, 13), 15, 13)
    assert (h, w) == hw and y.shape == (1, hw[0] * hw[1], 2 * DIM)
    x = torch.empty(1, 15 * 13, DIM)
    assert count_macs(TokensOnly(dtm), (x, 15, 13), count_norms=True).total == dtm.macs(15, 13)


def test_dtm_map_too_small():
    dtm = DeformableTokenMerging(DIM, 2 * DIM)
    with pytest.raises(ConfigError, match="at least 2x2"):
        dtm.out_size(1, 6)
    assert DeformableTokenMerging(DIM, 2 * DIM, pad_odd=True).out_size(1, 5) == (1, 3)


# --- LITv2 at odd resolutions --------------------------------------------------------------------


def tiny_litv2(**kwargs) -> LITv2:
    cfg = dict(embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8), num_classes=10)
    return LITv2(**(cfg | kwargs)).eval()


@pytest.mark.parametrize("attn", ["hilo", "sra"])
def test_litv2_odd_resolution_stages_and_counts(attn):
    model = tiny_litv2(attn=attn)
    # 70x90: patch embed pads to 72x92 -> 18x23; then floor halving 9x11, 4x5, 2x2
    expect = [(18, 23), (9, 11), (4, 5), (2, 2)]
    assert model.stage_sizes(70, 90) == expect
    with torch.no_grad():
        feats = model.forward_features(torch.randn(1, 3, 70, 90))
    assert [tuple(f.shape[-2:]) for f in feats] == expect
    x = torch.empty(1, 3, 70, 90, device="meta")
    assert count_macs(model, x, count_norms=True).total == model.macs(70, 90)


def test_litv2_minimum_size():
    model = tiny_litv2()
    assert model.stage_sizes(29, 29)[-1] == (1, 1)
    with pytest.raises(ConfigError, match="at least 29 pixels"):
        model.stage_sizes(28, 64)
