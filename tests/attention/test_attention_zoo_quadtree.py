"""QuadTree attention: published counts (and what the published MACs leave out), analytic =
traced MACs, map sizes, coarse-to-fine selection, impl parity, training, validation, CLI row."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from hilobench.attention import build_attention
from hilobench.attention.quadtree import QuadTreeAttention
from hilobench.core.errors import ConfigError
from hilobench.core.row import is_measured
from hilobench.measure.flops import layer_macs

CliRunner = Callable[[list[str]], tuple[int, str, str]]

#: published single-layer figures (dim 768, 12 heads, 14x14, 2 levels, top-8): params M, MMACs
PUBLISHED = (5.33, 613.25)
TOKEN_MAPS = [(14, 14), (24, 24), (15, 13), (7, 5)]


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


@functools.cache
def _layer(impl: str, levels: int = 2) -> QuadTreeAttention:
    m = build_attention("quadtree", 768, 12, impl=impl, levels=levels)
    assert isinstance(m, QuadTreeAttention)
    return m


def _pair(dim: int = 64, heads: int = 4, **knobs):
    torch.manual_seed(0)
    ref = build_attention("quadtree", dim, heads, impl="reference", **knobs).eval()
    fused = build_attention("quadtree", dim, heads, impl="fused", **knobs).eval()
    fused.load_state_dict(ref.state_dict(), strict=True)
    return ref, fused


def test_published_params():
    m = _layer("reference")
    assert n_params(m) == 5_331_458
    assert round(n_params(m) / 1e6, 2) == PUBLISHED[0]


def test_published_macs_leave_out_the_fine_level_products():
    """The published layer ran its fine-level score and aggregation as custom autograd
    functions, invisible to fvcore's trace: 613.25M is the full count less those two products
    (196 queries x 32 keys x 768 channels each)."""
    m = _layer("reference")
    parts = m.macs_breakdown(14, 14)
    assert parts["fine"] == 2 * 196 * 4 * 8 * 768
    assert parts["selection"] == 0
    full = layer_macs(m, 14, 14).total
    assert full == m.macs(14, 14) == 622_884_864
    assert round((full - parts["fine"]) / 1e6, 2) == PUBLISHED[1]
    assert full - parts["fine"] == 613_251_072


def test_published_figure_has_the_group_norms():
    c = layer_macs(_layer("reference"), 14, 14)
    assert c.by_op["group_norm"] == 5 * (196 + 49) * 768
    assert c.by_op["linear"] == 4 * 196 * 768 * 768


@pytest.mark.parametrize("hw", TOKEN_MAPS, ids=lambda hw: f"{hw[0]}x{hw[1]}")
@pytest.mark.parametrize("impl", ["reference", "fused"])
def test_traced_equals_analytic(impl, hw):
    m = _layer(impl)
    c = layer_macs(m, *hw)
    assert c.uncounted == [] and c.traced_on == "meta"
    assert c.total == m.macs(*hw), c.by_op


@pytest.mark.parametrize("impl", ["reference", "fused"])
def test_traced_equals_analytic_three_levels(impl):
    m = _layer(impl, 3)
    for hw in [(14, 14), (15, 13)]:
        c = layer_macs(m, *hw)
        assert c.uncounted == [] and c.total == m.macs(*hw), (hw, c.by_op)


def test_fused_counts_only_the_selection_scores_extra():
    ref, fused = _layer("reference"), _layer("fused")
    assert fused.macs(14, 14) - ref.macs(14, 14) == 49 * 49 * 768


@pytest.mark.parametrize("levels", [2, 3])
@pytest.mark.parametrize("hw", [(14, 14), (15, 13), (8, 8), (11, 6)])
def test_shapes_and_fused_matches_reference(hw, levels):
    ref, fused = _pair(levels=levels, topk=2 if levels == 3 else 8)
    H, W = hw
    x = torch.randn(2, H * W, 64)
    with torch.no_grad():
        a, b = ref(x, H, W), fused(x, H, W)
    assert a.shape == b.shape == (2, H * W, 64)
    assert torch.isfinite(a).all()
    assert rel_err(b, a) < 1e-5


def test_full_size_fused_matches_reference():
    ref, fused = _pair(768, 12)
    x = torch.randn(1, 15 * 13, 768)
    with torch.no_grad():
        assert rel_err(fused(x, 15, 13), ref(x, 15, 13)) < 1e-5


@pytest.mark.parametrize("impl", ["reference", "fused"])
def test_backward_reaches_every_parameter(impl):
    m = build_attention("quadtree", 64, 4, impl=impl).train()
    x = torch.randn(2, 15 * 13, 64, requires_grad=True)
    m(x, 15, 13).square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for pname, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_full_topk_equals_two_level_dense_attention():
    """With top-k = every coarse token, each fine query sees every fine key: the layer is then
    dense attention at both levels, merged by the level weights."""
    torch.manual_seed(0)
    H = W = 4
    C, nh = 16, 2
    m = QuadTreeAttention(C, nh, topk=4).eval()  # coarse map 2x2 = 4 tokens

    def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        # (1, C, h, w) maps -> (1, C, h, w)
        h, w = q.shape[-2:]
        q, k, v = (t.reshape(1, nh, C // nh, h * w).transpose(-2, -1) for t in (q, k, v))
        o = ((q @ k.transpose(-2, -1)) * m.scale).softmax(-1) @ v
        return o.transpose(-2, -1).reshape(1, C, h, w)

    x = torch.randn(1, H * W, C)
    with torch.no_grad():
        q, k, v = (f(x).transpose(1, 2).reshape(1, C, H, W) for f in (m.q, m.k, m.v))
        qc, kc = torch.nn.functional.avg_pool2d(q, 2), torch.nn.functional.avg_pool2d(k, 2)
        vc = m.reduce_post[0](m.reduce_pre[0](v))
        w = m.level_weight.softmax(0)
        coarse = (attend(qc, kc, vc) + m.lepe[0](vc)) * w[0]
        fine = (attend(q, k, v) + m.lepe[1](v)) * w[1]
        merged = coarse.repeat_interleave(2, -2).repeat_interleave(2, -1) + fine
        expected = m.proj(merged.reshape(1, C, H * W).transpose(1, 2))
        assert torch.allclose(m(x, H, W), expected, atol=1e-5)


def test_validation_and_score_elements():
    m = QuadTreeAttention(64, 4)
    with pytest.raises(ConfigError, match="too small"):
        m(torch.randn(1, 15, 64), 5, 3)  # coarsest 3x2 = 6 < 8 tokens
    with pytest.raises(ConfigError, match="too small"):
        m.macs(1, 1)
    with pytest.raises(ConfigError):
        QuadTreeAttention(64, 4, levels=1)
    with pytest.raises(ConfigError):
        QuadTreeAttention(64, 4, topk=0)
    assert m.score_elements(14, 14) == 4 * (49 * 49 + 196 * 32)
    assert m.score_elements(15, 13) == 4 * (56 * 56 + 16 * 14 * 32)
    q = build_attention("quadtree", 64, 4, levels=3, topk=2)
    assert isinstance(q, QuadTreeAttention) and (q.levels, q.topk) == (3, 2)


def test_cli_layer_row(cli: CliRunner, tmp_path: Path):
    code, stdout, stderr = cli(
        ["layer", "--attn", "quadtree", "--dim", "64", "--heads", "4", "--tokens", "14x14"]
        + ["--batch", "2", "--budget", "0.1", "--no-roofline", "--format", "json"]
        + ["--out", str(tmp_path / "run")]
    )
    assert code == 0, stderr
    (row,) = json.loads(stdout)
    assert is_measured(row) and row["attention"] == "quadtree"
    assert row["macs"] == row["macs_traced"] and row["uncounted_ops"] == []
