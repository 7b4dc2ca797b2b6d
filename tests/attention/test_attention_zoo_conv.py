"""XCA (XCiT), VAN (large-kernel attention) and HorNet (gnConv): published counts, analytic =
traced MACs, shapes on odd maps, backward, fused = reference, and a CLI row."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from hilobench.attention import available_attentions, build_attention
from hilobench.attention.base import Attention
from hilobench.attention.hornet import GatedConvAttention, gate_widths
from hilobench.attention.van import LargeKernelAttention
from hilobench.attention.xca import CrossCovarianceAttention
from hilobench.core.errors import ConfigError
from hilobench.core.row import is_measured
from hilobench.measure.flops import layer_macs

CliRunner = Callable[[list[str]], tuple[int, str, str]]

NAMES = ("xca", "van", "hornet")
#: The single-layer table (dim 768, 12 heads, 14x14): params (M), MMACs as fvcore counted them.
PUBLISHED = {"xca": (2.36, 481.69), "van": (1.83, 357.96), "hornet": (2.23, 436.51)}
TOKEN_MAPS = [(14, 14), (24, 24), (96, 96), (15, 13)]


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@functools.cache
def _layer(name: str, impl: str) -> Attention:
    return build_attention(name, 768, 12, impl=impl)


def _pair(name: str, dim: int = 64, heads: int = 4) -> tuple[Attention, Attention]:
    torch.manual_seed(0)
    ref = build_attention(name, dim, heads, impl="reference").eval()
    fused = build_attention(name, dim, heads, impl="fused").eval()
    fused.load_state_dict(ref.state_dict(), strict=True)
    return ref, fused


def test_registered():
    assert set(NAMES) <= set(available_attentions())


@pytest.mark.parametrize("name", NAMES)
def test_published_params_and_macs(name):
    params_m, mmacs = PUBLISHED[name]
    m = _layer(name, "reference")
    assert round(n_params(m) / 1e6, 2) == params_m
    assert round(m.macs(14, 14) / 1e6, 2) == mmacs
    assert round(layer_macs(m, 14, 14).total / 1e6, 2) == mmacs


def test_exact_counts_at_the_paper_setting():
    """Spelled out so a change in any term shows: N = 196, C = 768, d_h = 64."""
    n, c = 196, 768
    assert n_params(_layer("xca", "reference")) == 3 * c * c + 3 * c + c * c + c + 12
    assert _layer("xca", "reference").macs(14, 14) == 4 * n * c * c + 2 * n * 64 * c
    assert n_params(_layer("van", "reference")) == 3 * (c * c + c) + c * 25 + c + c * 49 + c
    assert _layer("van", "reference").macs(14, 14) == 3 * n * c * c + n * c * (25 + 49)
    widths = gate_widths(c, 4)
    assert widths == [96, 192, 384, 768]
    pws = 96 * 192 + 192 * 384 + 384 * 768
    hornet = _layer("hornet", "reference")
    assert n_params(hornet) == (c * 2 * c + 2 * c) + 1440 * 50 + (pws + 192 + 384 + 768) + (
        c * c + c
    )
    assert hornet.macs(14, 14) == n * (2 * c * c + c * c + pws + 1440 * 49)


def test_full_counts_with_the_gating_products():
    """fvcore skips elementwise products; charged one MAC each, the gates add N·C (VAN) and
    N·Σwidths (HorNet)."""
    van, hornet = _layer("van", "reference"), _layer("hornet", "reference")
    assert isinstance(van, LargeKernelAttention) and isinstance(hornet, GatedConvAttention)
    assert van.gating_macs(14, 14) == 196 * 768
    assert round((van.macs(14, 14) + van.gating_macs(14, 14)) / 1e6, 2) == 358.11
    assert hornet.gating_macs(14, 14) == 196 * 1440
    assert round((hornet.macs(14, 14) + hornet.gating_macs(14, 14)) / 1e6, 2) == 436.79


@pytest.mark.parametrize("hw", TOKEN_MAPS, ids=lambda hw: f"{hw[0]}x{hw[1]}")
@pytest.mark.parametrize("impl", ["reference", "fused"])
@pytest.mark.parametrize("name", NAMES)
def test_traced_equals_analytic(name, impl, hw):
    m = _layer(name, impl)
    c = layer_macs(m, *hw)
    assert c.uncounted == []
    assert c.traced_on == "meta"
    assert c.total == m.macs(*hw), c.by_op


@pytest.mark.parametrize("hw", [(14, 14), (15, 13), (1, 1), (3, 7)])
@pytest.mark.parametrize("name", NAMES)
def test_output_shape(name, hw):
    H, W = hw
    m = build_attention(name, 64, 4).eval()
    with torch.no_grad():
        y = m(torch.randn(2, H * W, 64), H, W)
    assert y.shape == (2, H * W, 64)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("impl", ["reference", "fused"])
@pytest.mark.parametrize("name", NAMES)
def test_backward_reaches_every_parameter(name, impl):
    m = build_attention(name, 64, 4, impl=impl).train()
    x = torch.randn(2, 15 * 13, 64, requires_grad=True)
    m(x, 15, 13).square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for pname, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("hw", [(14, 14), (15, 13)])
@pytest.mark.parametrize("name", NAMES)
def test_fused_equals_reference(name, hw):
    ref, fused = _pair(name)
    H, W = hw
    x = torch.randn(2, H * W, 64)
    with torch.no_grad():
        a, b = ref(x, H, W), fused(x, H, W)
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_which_fused_paths_are_the_reference():
    """VAN and HorNet have no softmax attention to fuse: their fused path is the reference."""
    assert LargeKernelAttention.fused_is_reference
    assert GatedConvAttention.fused_is_reference
    assert not CrossCovarianceAttention.fused_is_reference  # a real sdpa kernel


def test_xca_fused_runs_sdpa():
    c = layer_macs(_layer("xca", "fused"), 14, 14)
    assert c.by_op["scaled_dot_product_attention"] == 12 * 64 * 64 * 2 * 196
    ref = layer_macs(_layer("xca", "reference"), 14, 14)
    assert "scaled_dot_product_attention" not in ref.by_op


def test_xca_temperature_sharpens_the_channel_attention():
    """A larger temperature changes the output: the parameter is used on both paths."""
    ref, fused = _pair("xca")
    x = torch.randn(1, 49, 64)
    with torch.no_grad():
        before = ref(x, 7, 7)
        for m in (ref, fused):
            assert isinstance(m, CrossCovarianceAttention)
            m.temperature.fill_(5.0)
        after_ref, after_fused = ref(x, 7, 7), fused(x, 7, 7)
    assert not torch.allclose(before, after_ref)
    torch.testing.assert_close(after_fused, after_ref, rtol=1e-4, atol=1e-5)


def test_score_elements():
    assert _layer("xca", "reference").score_elements(96, 96) == 12 * 64 * 64
    assert _layer("van", "reference").score_elements(14, 14) == 0
    assert _layer("hornet", "reference").score_elements(14, 14) == 0


def test_van_keeps_its_shortcut():
    """With the last projection zeroed, the layer is the identity (the shortcut alone)."""
    m = build_attention("van", 64, 4).eval()
    assert isinstance(m, LargeKernelAttention)
    with torch.no_grad():
        for p in m.proj_2.parameters():
            p.zero_()
        x = torch.randn(2, 15 * 13, 64)
        torch.testing.assert_close(m(x, 15, 13), x)


def test_hornet_order_and_width_checks():
    assert gate_widths(64, 3) == [16, 32, 64]
    m = GatedConvAttention(64, 4, order=2)
    assert m.macs(5, 5) == layer_macs(m, 5, 5).total
    with pytest.raises(ConfigError, match="divisible by 8"):
        GatedConvAttention(36, 4)
    with pytest.raises(ConfigError, match="positive integer"):
        GatedConvAttention(64, 4, order=0)


@pytest.mark.parametrize("impl", ["reference", "fused"])
def test_cli_layer_rows(tmp_path: Path, cli: CliRunner, impl: str) -> None:
    args = "layer --dim 64 --heads 4 --tokens 7x7 --batch 2 --budget 0.1 --no-roofline".split()
    args += ["--attn", ",".join(NAMES), "--impl", impl, "--out", str(tmp_path / "run")]
    code, stdout, stderr = cli([*args, "--format", "json"])
    assert code == 0, stderr
    rows = json.loads(stdout)
    assert {r["attention"] for r in rows} == set(NAMES)
    for r in rows:
        assert is_measured(r)
        assert r["impl"] == impl
        assert r["macs"] == r["macs_traced"]
        assert r["uncounted_ops"] == []
