"""HiLo, MSA and SRA: published counts, HiLo's special cases, padding, impl parity, validation."""

from __future__ import annotations

import pytest
import torch

from hilobench.attention import build_attention
from hilobench.attention.hilo import HiLo, lofi_heads
from hilobench.attention.msa import MultiHeadSelfAttention
from hilobench.attention.sra import SpatialReductionAttention
from hilobench.core.errors import ConfigError


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float(), b.float()
    return ((a - b).abs().max() / b.abs().max()).item()


def pair(cls, **kw):
    """A reference layer and a fused one holding the same weights (strict state-dict load)."""
    ref = cls(impl="reference", **kw).eval()
    fused = cls(impl="fused", **kw).eval()
    fused.load_state_dict(ref.state_dict(), strict=True)
    return ref, fused


# --- published counts (single-layer benchmark: dim 768, 12 heads, 14x14) -------------------


@pytest.mark.parametrize(
    "layer, params_m, mmacs",
    [
        (MultiHeadSelfAttention(768, 12), 2.36, 521.43),
        (SpatialReductionAttention(768, 12, sr_ratio=2), 4.72, 419.56),
        (HiLo(768, 12, window=2, alpha=0.9), 2.20, 298.30),
    ],
    ids=["msa", "sra", "hilo"],
)
def test_published_counts(layer, params_m, mmacs):
    assert round(n_params(layer) / 1e6, 2) == params_m
    assert round(layer.macs(14, 14) / 1e6, 2) == mmacs


def test_hilo_paper_check_value_exact():
    assert HiLo(384, 12, window=2, alpha=0.5).macs(14, 14) == 83_467_776


def test_hilo_head_split():
    assert (HiLo(768, 12).l_heads, HiLo(768, 12).h_heads) == (10, 2)
    assert HiLo(1024, 16).l_heads == 14
    assert lofi_heads(100, 0.29) == 28  # int(28.999…), as the official code truncates
    assert lofi_heads(3, 1 / 3) == 1
    assert HiLo(64, 4, window=1, alpha=0.0).l_heads == 4  # s=1: alpha ignored


def test_hilo_window1_is_msa_and_counts_agree():
    torch.manual_seed(0)
    hilo = HiLo(64, 4, window=1, alpha=0.5).eval()
    msa = MultiHeadSelfAttention(64, 4).eval()
    with torch.no_grad():
        msa.qkv.weight.copy_(torch.cat([hilo.l_q.weight, hilo.l_kv.weight]))
        msa.qkv.bias.copy_(torch.cat([hilo.l_q.bias, hilo.l_kv.bias]))
        msa.proj.load_state_dict(hilo.l_proj.state_dict())
        x = torch.randn(2, 7 * 7, 64)
        assert torch.allclose(hilo(x, 7, 7), msa(x, 7, 7), atol=1e-5, rtol=1e-5)
    assert hilo.macs(7, 7) == msa.macs(7, 7)
    assert n_params(hilo) == n_params(msa)


def test_sra_ratio1_counts_as_msa():
    sra = SpatialReductionAttention(64, 4, sr_ratio=1)
    assert not hasattr(sra, "sr") and not hasattr(sra, "norm")
    assert sra.macs(7, 7) == MultiHeadSelfAttention(64, 4).macs(7, 7)


@pytest.mark.parametrize("window", [2, 4])
def test_hilo_pads_and_crops(window):
    layer = HiLo(64, 4, window=window, alpha=0.5).eval()
    x = torch.randn(2, 15 * 13, 64)
    with torch.no_grad():
        y = layer(x, 15, 13)
    assert y.shape == x.shape and torch.isfinite(y).all()
    hp, wp = -(-15 // window) * window, -(-13 // window) * window
    assert layer.macs(15, 13) == HiLo(64, 4, window=window, alpha=0.5).macs(hp, wp)


def test_sra_non_divisible_map():
    layer = SpatialReductionAttention(64, 4, sr_ratio=4).eval()
    x = torch.randn(1, 15 * 13, 64)
    with torch.no_grad():
        assert layer(x, 15, 13).shape == x.shape


# --- fused vs reference -----------------------------------------------------------------

CASES = [
    (MultiHeadSelfAttention, {}, (8, 8)),
    (SpatialReductionAttention, {"sr_ratio": 2}, (15, 13)),
    (SpatialReductionAttention, {"sr_ratio": 1}, (7, 7)),
    (SpatialReductionAttention, {"sr_ratio": 2, "pad_odd": True}, (15, 13)),
    (SpatialReductionAttention, {"sr_ratio": 3}, (14, 14)),
    (HiLo, {"window": 2, "alpha": 0.0}, (15, 13)),
    (HiLo, {"window": 2, "alpha": 0.5}, (15, 13)),
    (HiLo, {"window": 2, "alpha": 1.0}, (15, 13)),
    (HiLo, {"window": 1, "alpha": 0.9}, (7, 7)),
]
CASE_IDS = ["msa", "sra2", "sra1", "sra2-pad", "sra3", "hilo-a0", "hilo-a0.5", "hilo-a1", "hilo-s1"]


@pytest.mark.parametrize("cls, kw, hw", CASES, ids=CASE_IDS)
def test_fused_matches_reference_float32(cls, kw, hw):
    torch.manual_seed(1)
    ref, fused = pair(cls, dim=64, num_heads=4, **kw)
    x = torch.randn(2, hw[0] * hw[1], 64)
    with torch.no_grad():
        assert rel_err(fused(x, *hw), ref(x, *hw)) <= 1e-5


@pytest.mark.parametrize("cls, kw, hw", CASES, ids=CASE_IDS)
def test_fused_matches_reference_bfloat16_autocast(cls, kw, hw):
    torch.manual_seed(2)
    ref, fused = pair(cls, dim=64, num_heads=4, **kw)
    x = torch.randn(2, hw[0] * hw[1], 64)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        y_ref, y_fused = ref(x, *hw), fused(x, *hw)
    assert y_ref.dtype == torch.bfloat16
    assert rel_err(y_fused, y_ref) <= 1e-2


@pytest.mark.parametrize("cls, kw, hw", CASES, ids=CASE_IDS)
def test_runs_on_meta(cls, kw, hw):
    for impl in ("reference", "fused"):
        with torch.device("meta"):
            layer = cls(dim=64, num_heads=4, impl=impl, **kw)
            y = layer(torch.empty(1, hw[0] * hw[1], 64), *hw)
        assert y.shape == (1, hw[0] * hw[1], 64) and y.is_meta


# --- validation and registry ------------------------------------------------------------


@pytest.mark.parametrize(
    "build, bad",
    [
        (lambda: HiLo(64, 4, alpha=-0.1), "-0.1"),
        (lambda: HiLo(64, 4, alpha=1.5), "1.5"),
        (lambda: HiLo(64, 4, alpha="0.5"), "0.5"),
        (lambda: HiLo(64, 4, window=0), "0"),
        (lambda: HiLo(64, 5), "5"),
        (lambda: MultiHeadSelfAttention(64, 3), "3"),
        (lambda: SpatialReductionAttention(64, 4, sr_ratio=0), "0"),
        (lambda: SpatialReductionAttention(64, 4, sr_ratio=1.5), "1.5"),
    ],
    ids=[
        "alpha-neg",
        "alpha-big",
        "alpha-str",
        "window0",
        "hilo-heads",
        "msa-heads",
        "sr0",
        "sr-float",
    ],
)
def test_bad_settings_raise_config_error(build, bad):
    with pytest.raises(ConfigError, match=bad.replace(".", r"\.")):
        build()


def test_registry_defaults_and_overrides():
    hilo = build_attention("hilo", 768, 12)
    assert isinstance(hilo, HiLo) and (hilo.window, hilo.alpha) == (2, 0.9)
    hilo = build_attention("hilo", 64, 4, window=4, alpha=0.5, sr_ratio=8, impl="fused")
    assert (hilo.window, hilo.alpha, hilo.impl) == (4, 0.5, "fused")
    assert build_attention("sra", 64, 4).sr_ratio == 2
    assert build_attention("sra", 64, 4, sr_ratio=4, window=3).sr_ratio == 4
    assert isinstance(build_attention("msa", 64, 4, window=7, alpha=0.5), MultiHeadSelfAttention)


def test_sra_reduction_weight_matches_its_channels_last_input():
    """The reduction conv keeps its weight channels-last, the layout of the token map it sees,
    also after loading a state dict written in the default layout; the output is unchanged."""
    torch.manual_seed(0)
    layer = SpatialReductionAttention(32, 2, sr_ratio=2).eval()
    plain = SpatialReductionAttention(32, 2, sr_ratio=2).eval()
    plain.sr.weight.data = plain.sr.weight.data.contiguous()  # the default layout
    assert not plain.sr.weight.is_contiguous(memory_format=torch.channels_last)
    layer.load_state_dict(plain.state_dict())
    assert layer.sr.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 64, 32)
    with torch.inference_mode():
        torch.testing.assert_close(layer(x, 8, 8), plain(x, 8, 8), rtol=1e-6, atol=1e-6)
