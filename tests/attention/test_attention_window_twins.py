"""W-MSA, SW-MSA and Twins (LSA, GSA, T-MSA): counts, independent re-computations, impl parity."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hilobench.attention import build_attention, set_impl
from hilobench.attention.twins import LocallyGroupedAttention, TwinsPair
from hilobench.attention.window import WindowAttention
from hilobench.core.errors import ConfigError

DIM, HEADS = 32, 4


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float(), b.float()
    return ((a - b).abs().max() / b.abs().max()).item()


def tokens(H: int, W: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, H * W, DIM, generator=torch.Generator().manual_seed(seed))


def ref_and_fused(name: str, **knobs):
    """The same weights behind both impls (a strict state-dict load, reference -> fused)."""
    torch.manual_seed(0)
    ref = build_attention(name, DIM, HEADS, impl="reference", **knobs).eval()
    torch.manual_seed(1)
    fused = build_attention(name, DIM, HEADS, impl="fused", **knobs).eval()
    fused.load_state_dict(ref.state_dict(), strict=True)
    return ref, fused


# --- counts (single-layer benchmark: dim 768, 12 heads, 14x14, w=7, no relative bias) --------


@pytest.mark.parametrize("name", ["wmsa", "swmsa", "lsa"])
def test_published_counts(name):
    layer = build_attention(name, 768, 12, window=7, rel_pos=False)
    assert n_params(layer) == 2_362_368  # 2.36M
    assert layer.macs(14, 14) == 477_173_760  # 477.17M
    assert round(layer.macs(14, 14) / 1e6, 2) == 477.17


def test_macs_formula_padded_and_small_maps():
    m = WindowAttention(DIM, HEADS, window=7)
    np_ = 21 * 14  # 15x13 padded to 21x14
    assert m.macs(15, 13) == 4 * np_ * DIM**2 + 2 * np_ * 49 * DIM
    # a map no larger than the window is one 5x6 window: no padding
    assert m.macs(5, 6) == 4 * 30 * DIM**2 + 2 * 30 * 30 * DIM


def test_tmsa_is_lsa_plus_gsa():
    pair = build_attention("tmsa", 768, 12)
    lsa = build_attention("lsa", 768, 12)
    gsa = build_attention("gsa", 768, 12)
    assert pair.layers_per_call == 2
    assert pair.macs(14, 14) == lsa.macs(14, 14) + gsa.macs(14, 14)
    assert n_params(pair) == n_params(lsa) + n_params(gsa)


def test_registry_defaults():
    assert build_attention("wmsa", DIM, HEADS).shift == 0
    with pytest.raises(ConfigError, match="unknown attention option 'shift'"):
        build_attention("wmsa", DIM, HEADS, shift=3)  # not a knob: swmsa derives its shift
    sw = build_attention("swmsa", DIM, HEADS)
    assert (sw.window, sw.shift, sw.rel_pos) == (7, 3, True)
    assert build_attention("swmsa", DIM, HEADS, window=4).shift == 2
    lsa = build_attention("lsa", DIM, HEADS)
    assert isinstance(lsa, LocallyGroupedAttention)
    assert (lsa.window, lsa.shift, lsa.rel_pos) == (7, 0, False)
    assert build_attention("gsa", DIM, HEADS).sr_ratio == 2
    pair = build_attention("tmsa", DIM, HEADS, window=4, sr_ratio=4)
    assert (pair.lsa.window, pair.gsa.sr_ratio) == (4, 4)
    table = build_attention("wmsa", DIM, HEADS).relative_position_bias_table
    assert table.shape == (13 * 13, HEADS) and table.abs().sum() > 0


# --- fused vs reference ----------------------------------------------------------------------

PARITY = [
    ("wmsa", {"window": 7}, 14, 14),
    ("wmsa", {"window": 7}, 15, 13),
    ("swmsa", {"window": 7}, 14, 14),
    ("swmsa", {"window": 7}, 15, 13),
    ("swmsa", {"window": 4, "rel_pos": False}, 8, 9),
    ("lsa", {"window": 7}, 15, 13),
    ("gsa", {"sr_ratio": 2}, 14, 14),
    ("tmsa", {"window": 7, "sr_ratio": 2}, 14, 14),
    ("tmsa", {"window": 7, "sr_ratio": 2}, 15, 13),
]


@pytest.mark.parametrize("name, knobs, H, W", PARITY)
def test_fused_matches_reference(name, knobs, H, W):
    ref, fused = ref_and_fused(name, **knobs)
    x = tokens(H, W)
    with torch.no_grad():
        y_ref, y_fused = ref(x, H, W), fused(x, H, W)
        assert y_ref.shape == x.shape  # padded maps are cropped back
        assert rel_err(y_fused, y_ref) <= 1e-5
        with torch.autocast("cpu", dtype=torch.bfloat16):
            b_ref, b_fused = ref(x, H, W), fused(x, H, W)
    assert b_ref.dtype == b_fused.dtype == torch.bfloat16
    assert rel_err(b_fused, b_ref) <= 1e-2


@pytest.mark.parametrize("name", ["wmsa", "swmsa", "lsa", "gsa", "tmsa"])
@pytest.mark.parametrize("impl", ["reference", "fused"])
def test_meta_device(name, impl):
    with torch.device("meta"):
        layer = build_attention(name, DIM, HEADS, impl=impl, window=4)
        x = torch.empty(2, 9 * 7, DIM)
    assert layer(x, 9, 7).shape == (2, 63, DIM)


@pytest.mark.parametrize("impl", ["reference", "fused"])
def test_trains_after_inference_forward(impl):
    """The cached shift mask made under inference mode must not leak into a training step."""
    layer = build_attention("swmsa", DIM, HEADS, impl=impl, window=4)
    x = tokens(8, 8)
    with torch.inference_mode():
        layer(x, 8, 8)
    layer(x, 8, 8).sum().backward()
    assert layer.relative_position_bias_table.grad is not None


def test_impl_reaches_twins_children():
    pair = TwinsPair(DIM, HEADS)
    pair.impl = "fused"
    assert (pair.lsa.impl, pair.gsa.impl) == ("fused", "fused")
    set_impl(pair, "reference")
    assert (pair.impl, pair.lsa.impl, pair.gsa.impl) == ("reference",) * 3
    with pytest.raises(ConfigError, match="bogus"):
        pair.impl = "bogus"


# --- independent re-computations with plain torch ops --------------------------------------


def bias_matrix(layer: WindowAttention, coords: list[tuple[int, int]]) -> torch.Tensor:
    """``(heads, n, n)`` bias looked up entry by entry from the relative offsets of ``coords``."""
    w, table = layer.window, layer.relative_position_bias_table.detach()
    index = [
        (yi - yj + w - 1) * (2 * w - 1) + (xi - xj + w - 1)
        for yi, xi in coords
        for yj, xj in coords
    ]
    n = len(coords)
    return table[torch.tensor(index)].reshape(n, n, -1).permute(2, 0, 1).clone()


def masked_global_attention(layer, x, logit_bias):
    """``softmax(q k^T * scale + logit_bias) v`` over all tokens, then proj; x is (B, N, C)."""
    B, N, C = x.shape
    h, d = layer.num_heads, layer.head_dim
    qkv = F.linear(x, layer.qkv.weight, layer.qkv.bias).reshape(B, N, 3, h, d)
    q, k, v = (t.transpose(1, 2) for t in qkv.unbind(2))
    logits = torch.einsum("bhid,bhjd->bhij", q, k) * d**-0.5 + logit_bias
    out = torch.einsum("bhij,bhjd->bhid", logits.softmax(-1), v).transpose(1, 2).reshape(B, N, C)
    return F.linear(out, layer.proj.weight, layer.proj.bias)


@pytest.mark.parametrize("H, W", [(7, 7), (5, 6)])
def test_map_within_window_is_global_attention_plus_bias(H, W):
    torch.manual_seed(0)
    layer = WindowAttention(DIM, HEADS, window=7).eval()
    x = tokens(H, W)
    coords = [(y, x_) for y in range(H) for x_ in range(W)]
    with torch.no_grad():
        expected = masked_global_attention(layer, x, bias_matrix(layer, coords))
        assert rel_err(layer(x, H, W), expected) <= 1e-5


@pytest.mark.parametrize("H, W", [(7, 7), (5, 6)])
def test_shift_is_dropped_when_map_fits_in_window(H, W):
    torch.manual_seed(0)
    wmsa = build_attention("wmsa", DIM, HEADS).eval()
    swmsa = build_attention("swmsa", DIM, HEADS).eval()
    swmsa.load_state_dict(wmsa.state_dict(), strict=True)
    x = tokens(H, W)
    with torch.no_grad():
        assert rel_err(swmsa(x, H, W), wmsa(x, H, W)) <= 1e-6
        # ...but on a larger map the shift changes the result
        x = tokens(14, 14)
        assert rel_err(swmsa(x, 14, 14), wmsa(x, 14, 14)) > 1e-3


def region(pos: int, length: int, w: int, s: int) -> int:
    """Swin's slices along one axis of the rolled map; a single region when unshifted."""
    if not s:
        return 0
    return 0 if pos < length - w else (1 if pos < length - s else 2)


@pytest.mark.parametrize("H, W, w", [(14, 14, 7), (15, 13, 7), (8, 9, 4)])
@pytest.mark.parametrize("shifted", [False, True])
def test_window_attention_against_token_level_masks(H, W, w, shifted):
    """Pad, roll, then one global attention whose mask allows only same-window, same-region
    pairs and whose bias is looked up per pair; roll back and crop."""
    torch.manual_seed(0)
    layer = WindowAttention(DIM, HEADS, window=w, shift=w // 2 if shifted else 0).eval()
    s = layer.shift
    hp, wp = -(-H // w) * w, -(-W // w) * w
    x = tokens(H, W)
    grid = F.pad(x.reshape(2, H, W, DIM), (0, 0, 0, wp - W, 0, hp - H))
    grid = torch.roll(grid, (-s, -s), (1, 2))
    cells = [(y, x_) for y in range(hp) for x_ in range(wp)]
    bias = bias_matrix(layer, [(y % w, x_ % w) for y, x_ in cells])
    window_of = [(y // w, x_ // w) for y, x_ in cells]
    region_of = [(region(y, hp, w, s), region(x_, wp, w, s)) for y, x_ in cells]
    allowed = torch.tensor(
        [
            [
                window_of[i] == window_of[j] and region_of[i] == region_of[j]
                for j in range(len(cells))
            ]
            for i in range(len(cells))
        ]
    )
    bias = bias.masked_fill(~allowed, float("-inf"))
    with torch.no_grad():
        out = masked_global_attention(layer, grid.reshape(2, hp * wp, DIM), bias)
        out = torch.roll(out.reshape(2, hp, wp, DIM), (s, s), (1, 2))[:, :H, :W]
        assert rel_err(layer(x, H, W), out.reshape(2, H * W, DIM)) <= 1e-5


@pytest.mark.parametrize("name", ["wmsa", "swmsa"])
def test_padding_equals_explicit_zero_padding_then_crop(name):
    """Padded tokens are zeros that are attended like real ones, then cropped."""
    torch.manual_seed(0)
    layer = build_attention(name, DIM, HEADS, window=4).eval()
    x = tokens(7, 5)
    padded = F.pad(x.reshape(2, 7, 5, DIM), (0, 0, 0, 3, 0, 1)).reshape(2, 64, DIM)
    with torch.no_grad():
        y = layer(x, 7, 5)
        expected = layer(padded, 8, 8).reshape(2, 8, 8, DIM)[:, :7, :5].reshape(2, 35, DIM)
    assert y.shape == x.shape
    assert rel_err(y, expected) <= 1e-6


# --- HiLo with alpha=0 is window attention without bias --------------------------------------


@pytest.mark.parametrize("H, W", [(8, 8), (7, 5)])
@pytest.mark.parametrize("impl", ["reference", "fused"])
def test_hilo_alpha0_is_lsa(H, W, impl):
    hilo_mod = pytest.importorskip("hilobench.attention.hilo")
    s = 2
    torch.manual_seed(0)
    hilo = hilo_mod.HiLo(DIM, HEADS, window=s, alpha=0.0, impl=impl).eval()
    lsa = build_attention("lsa", DIM, HEADS, window=s, impl=impl).eval()
    lsa.load_state_dict(
        {
            "qkv.weight": hilo.h_qkv.weight,
            "qkv.bias": hilo.h_qkv.bias,
            "proj.weight": hilo.h_proj.weight,
            "proj.bias": hilo.h_proj.bias,
        },
        strict=True,
    )
    x = tokens(H, W)
    with torch.no_grad():
        assert rel_err(lsa(x, H, W), hilo(x, H, W)) <= 1e-5
    assert lsa.macs(H, W) == hilo.macs(H, W)


# --- bad settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, knobs, match",
    [
        ("wmsa", {"window": 0}, "got 0"),
        ("swmsa", {"window": 0}, "got 0"),
        ("lsa", {"window": 0}, "got 0"),
        ("tmsa", {"window": 0}, "got 0"),
        ("tmsa", {"sr_ratio": 0}, "got 0"),
        ("wmsa", {"rel_pos": "yes"}, "'yes'"),
    ],
)
def test_bad_knobs(name, knobs, match):
    with pytest.raises(ConfigError, match=match):
        build_attention(name, DIM, HEADS, **knobs)


@pytest.mark.parametrize("shift", [7, 9, -1])
def test_bad_shift(shift):
    with pytest.raises(ConfigError, match=rf"got {shift}\b"):
        WindowAttention(DIM, HEADS, window=7, shift=shift)


@pytest.mark.parametrize("name", ["swmsa", "wmsa"])
def test_fused_inference_keeps_its_mask_until_the_bias_table_changes(name):
    torch.manual_seed(0)
    fused = build_attention(name, dim=32, num_heads=2, impl="fused", window=4).eval()
    ref = build_attention(name, dim=32, num_heads=2, impl="reference", window=4).eval()
    ref.load_state_dict(fused.state_dict())
    x = torch.randn(2, 8 * 8, 32)
    kept = lambda: fused._kept_mask(4, 4, 8, 8, fused.shift, x.device)  # noqa: E731
    with torch.inference_mode():
        torch.testing.assert_close(fused(x, 8, 8), ref(x, 8, 8), rtol=1e-5, atol=1e-5)
        first = kept()
        assert first is not None and kept() is first  # built once, then reused
    with torch.no_grad():  # an in-place update, as an optimizer step or a state-dict load
        fused.relative_position_bias_table.add_(0.5)
        ref.relative_position_bias_table.add_(0.5)
    with torch.inference_mode():
        assert kept() is not first
        torch.testing.assert_close(fused(x, 8, 8), ref(x, 8, 8), rtol=1e-5, atol=1e-5)
    out = fused(x, 8, 8)  # with autograd: built per call, as the reference
    out.sum().backward()
    assert fused.relative_position_bias_table.grad is not None
