"""Focal and DAT: published counts, analytic = traced MACs, any map size, impl parity, training,
validation and a CLI row."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from hilobench.attention import build_attention
from hilobench.attention.dat import DeformableAttention
from hilobench.attention.focal import FocalAttention, surrounding_positions
from hilobench.core.errors import ConfigError
from hilobench.core.row import is_measured
from hilobench.measure.flops import layer_macs

CliRunner = Callable[[list[str]], tuple[int, str, str]]

LAYERS = ("focal", "dat")
#: published single-layer figures (dim 768, 12 heads, 14x14): params M, MMACs
PUBLISHED = {"focal": (2.44, 526.85), "dat": (2.38, 528.69)}
TOKEN_MAPS = [(14, 14), (24, 24), (96, 96), (15, 13), (5, 3), (1, 1)]


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


@functools.cache
def _layer(name: str, impl: str) -> torch.nn.Module:
    return build_attention(name, 768, 12, impl=impl)


def _pair(name: str, dim: int = 64, heads: int = 4, **knobs):
    torch.manual_seed(0)
    ref = build_attention(name, dim, heads, impl="reference", **knobs).eval()
    fused = build_attention(name, dim, heads, impl="fused", **knobs).eval()
    fused.load_state_dict(ref.state_dict(), strict=True)
    return ref, fused


SMALL = {"focal": {}, "dat": {"offset_groups": 2}}


@pytest.mark.parametrize("name", LAYERS)
def test_published_params_and_macs(name):
    params_m, mmacs = PUBLISHED[name]
    m = _layer(name, "reference")
    assert round(n_params(m) / 1e6, 2) == params_m
    assert round(m.macs(14, 14) / 1e6, 2) == mmacs
    assert round(layer_macs(m, 14, 14).total / 1e6, 2) == mmacs


def test_exact_counts_at_the_benchmark_setting():
    focal, dat = _layer("focal", "reference"), _layer("dat", "reference")
    assert (n_params(focal), focal.macs(14, 14)) == (2_443_034, 526_851_072)
    assert (n_params(dat), dat.macs(14, 14)) == (2_378_796, 528_691_968)


def test_dat_published_figure_has_grid_sample_and_layernorm():
    """fvcore charged ``grid_sampler`` 4 MACs per output element and the offset network's
    LayerNorm 5 per element; both are in the published 528.69M."""
    c = layer_macs(_layer("dat", "reference"), 14, 14)
    n, dim, heads = 196, 768, 12
    assert c.by_op["grid_sampler"] == 4 * n * dim + 4 * heads * n * n
    assert c.by_op["layer_norm"] == 5 * n * dim
    assert round((c.total - c.by_op["grid_sampler"]) / 1e6, 2) == 526.25


@pytest.mark.parametrize("hw", TOKEN_MAPS, ids=lambda hw: f"{hw[0]}x{hw[1]}")
@pytest.mark.parametrize("impl", ["reference", "fused"])
@pytest.mark.parametrize("name", LAYERS)
def test_traced_equals_analytic(name, impl, hw):
    m = _layer(name, impl)
    c = layer_macs(m, *hw)
    assert c.uncounted == [] and c.traced_on == "meta"
    assert c.total == m.macs(*hw), c.by_op


@pytest.mark.parametrize("hw", [(14, 14), (15, 13), (3, 4), (1, 1)])
@pytest.mark.parametrize("name", LAYERS)
def test_shapes_and_fused_matches_reference(name, hw):
    ref, fused = _pair(name, **SMALL[name])
    H, W = hw
    x = torch.randn(2, H * W, 64)
    with torch.no_grad():
        a, b = ref(x, H, W), fused(x, H, W)
    assert a.shape == b.shape == (2, H * W, 64)
    assert torch.isfinite(a).all()
    assert rel_err(b, a) < 1e-5


@pytest.mark.parametrize("name", LAYERS)
def test_full_size_fused_matches_reference(name):
    ref, fused = _pair(name, 768, 12)
    x = torch.randn(1, 15 * 13, 768)
    with torch.no_grad():
        assert rel_err(fused(x, 15, 13), ref(x, 15, 13)) < 1e-5


@pytest.mark.parametrize("impl", ["reference", "fused"])
@pytest.mark.parametrize("name", LAYERS)
def test_backward_reaches_every_parameter(name, impl):
    m = build_attention(name, 64, 4, impl=impl, **SMALL[name]).train()
    x = torch.randn(2, 15 * 13, 64, requires_grad=True)
    m(x, 15, 13).square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for pname, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_focal_surroundings():
    # w=7, e=3: 4 x 33 slots, the 120-token ring plus 12 shared by two moved windows
    assert surrounding_positions(7, 3).numel() == 132
    assert FocalAttention(64, 4).n_keys() == 49 + 132 + 9
    m = FocalAttention(64, 4, expand_size=0)
    assert m.n_keys() == 49 + 9
    x = torch.randn(1, 14 * 14, 64)
    assert m(x, 14, 14).shape == x.shape
    assert layer_macs(m, 14, 14).total == m.macs(14, 14)


@pytest.mark.parametrize("hw", [(7, 7), (5, 5), (7, 12)])
def test_focal_drops_its_surroundings_on_a_map_within_the_window(hw):
    """The authors' rule: min(H, W) <= window means expand_size 0, so the default layer equals
    one built without surroundings (same weights) there, and its counts say so."""
    torch.manual_seed(0)
    default = FocalAttention(64, 4).eval()
    bare = FocalAttention(64, 4, expand_size=0).eval()
    state = {k: v for k, v in default.state_dict().items() if k != "surrounding_bias"}
    bare.load_state_dict(state, strict=False)
    H, W = hw
    x = torch.randn(2, H * W, 64)
    with torch.no_grad():
        assert (default(x, H, W) - bare(x, H, W)).abs().max() <= 1e-5
    assert default.expand_at(H, W) == 0 and default.n_keys(H, W) == 49 + 9
    assert default.macs(H, W) == bare.macs(H, W) == layer_macs(default, H, W).total
    assert default.score_elements(H, W) == bare.score_elements(H, W)


def test_focal_keeps_its_surroundings_on_a_map_larger_than_the_window():
    torch.manual_seed(0)
    default = FocalAttention(64, 4).eval()
    bare = FocalAttention(64, 4, expand_size=0).eval()
    state = {k: v for k, v in default.state_dict().items() if k != "surrounding_bias"}
    bare.load_state_dict(state, strict=False)
    x = torch.randn(1, 8 * 8, 64)
    with torch.no_grad():
        assert (default(x, 8, 8) - bare(x, 8, 8)).abs().max() > 1e-3
    assert default.expand_at(8, 8) == 3 and default.macs(8, 8) == layer_macs(default, 8, 8).total


def test_focal_pooled_neighbours_beyond_the_map_are_masked():
    """A 7x7 map is one window: of its 3x3 pooled neighbourhood only the centre is real, so
    moving the (zero) outside keys' bias does not change the output."""
    m = FocalAttention(64, 4).eval()
    x = torch.randn(1, 49, 64)
    with torch.no_grad():
        before = m(x, 7, 7)
        table = m.pooled_bias_table
        centre = m.pooled_index.view(49, 3, 3)[:, 1, 1]
        keep = table[:, centre].clone()
        table.add_(50.0)
        table[:, centre] = keep
        after = m(x, 7, 7)
    assert torch.allclose(before, after, atol=1e-5)


def test_builder_arguments_and_score_elements():
    m = FocalAttention(64, 4, window=5)
    assert m.score_elements(14, 14) == 4 * 15 * 15 * m.n_keys()
    d = build_attention("dat", 64, 4, offset_groups=4)
    assert isinstance(d, DeformableAttention) and d.groups == 4
    assert d.score_elements(15, 13) == 4 * 195 * 195


def test_validation():
    with pytest.raises(ConfigError, match="offset_groups"):
        DeformableAttention(64, 4, offset_groups=3)
    with pytest.raises(ConfigError, match="kernel"):
        DeformableAttention(64, 4, offset_groups=2, kernel=4)
    with pytest.raises(ConfigError, match="expand_size"):
        FocalAttention(64, 4, window=7, expand_size=7)
    with pytest.raises(ConfigError, match="focal_window"):
        FocalAttention(64, 4, focal_window=2)


@pytest.mark.parametrize(("name", "extra"), [("focal", []), ("dat", ["--offset-groups", "2"])])
def test_cli_layer_row(name, extra, cli: CliRunner, tmp_path: Path):
    code, stdout, stderr = cli(
        ["layer", "--attn", name, "--dim", "64", "--heads", "4", "--tokens", "14x14"]
        + ["--batch", "2", "--budget", "0.1", "--no-roofline", "--format", "json"]
        + ["--out", str(tmp_path / "run"), *extra]
    )
    assert code == 0, stderr
    (row,) = json.loads(stdout)
    assert is_measured(row) and row["attention"] == name
    assert row["macs"] == row["macs_traced"] and row["uncounted_ops"] == []
