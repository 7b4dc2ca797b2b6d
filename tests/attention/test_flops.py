"""Traced MAC counts: hand-computed toys, our extra handles, meta-device counting, and agreement
with every attention layer's analytic ``macs()``."""

from __future__ import annotations

import functools
import math
import time

import psutil
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from hilobench.measure.flops import MacCount, count_macs, layer_macs


class Lambda(nn.Module):
    """A module whose forward is a plain function, so each test states its ops inline."""

    def __init__(self, fn, **params: nn.Parameter):
        super().__init__()
        self.fn = fn
        self.p = nn.ParameterDict(params)

    def forward(self, *args):
        return self.fn(self.p, *args)


def test_linear_conv_bmm_toy_by_hand():
    class Toy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 16)
            self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
            self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4)

        def forward(self, x, img, scale):
            y = self.fc(x) * scale  # (2, 5, 16)
            a = torch.bmm(y, y.transpose(1, 2)).softmax(-1)  # (2, 5, 5)
            return a.sum() + self.dw(self.conv(img)).sum()  # conv: (2, 4, 4, 4)

    c = count_macs(Toy(), (torch.randn(2, 5, 8), torch.randn(2, 3, 8, 8), 0.5))
    assert c.by_op == {"linear": 2 * 5 * 8 * 16, "bmm": 2 * 5 * 16 * 5, "conv": 3456 + 1152}
    assert c.total == 1280 + 800 + 2 * 4 * 4 * 4 * 3 * 9 + 2 * 4 * 4 * 4 * 1 * 9
    assert c.uncounted == [] and c.traced_on == "meta"
    assert {"aten::softmax", "aten::mul", "aten::sum"} <= set(c.ignored)


def test_meta_and_cpu_traces_agree_including_conv_variants():
    class Convs(nn.Module):
        def __init__(self):
            super().__init__()
            self.same = nn.Conv2d(3, 6, 4, padding="same")  # even kernel: asymmetric pad
            self.up = nn.ConvTranspose2d(6, 2, 2, stride=2)
            self.c1 = nn.Conv1d(3, 5, 3)

        def forward(self, img, seq):
            return self.up(self.same(img)).sum() + self.c1(seq).sum()

    args = (torch.randn(2, 3, 9, 7), torch.randn(3, 11))  # unbatched conv1d input
    meta, cpu = count_macs(Convs(), args), count_macs(Convs(), args, device="cpu")
    assert meta.traced_on == "meta" and cpu.traced_on == "cpu"
    assert meta.by_op == cpu.by_op
    same = 2 * 6 * 9 * 7 * 3 * 16
    up = 2 * 9 * 7 * 6 * 2 * 2 * 2  # transposed: input positions x weight
    c1 = 5 * 9 * 3 * 3
    assert meta.total == same + up + c1


def test_matmul_broadcast_and_vectors():
    def fn(_, a, b, v):
        return (a @ b).sum() + (v @ v) + (b.transpose(-1, -2) @ v).sum()

    a, b, v = torch.randn(5, 4), torch.randn(3, 4, 6), torch.randn(4)
    c = count_macs(Lambda(fn), (a, b, v))
    # (5,4)@(3,4,6): 3*5*6 outputs of 4 MACs; v@v: 4; (3,6,4)@(4,): 18 outputs of 4
    assert c.by_op["matmul"] == 3 * 5 * 6 * 4 + 4 + 3 * 6 * 4


def test_einsum_and_baddbmm_handles():
    def fn(_, q, k, a, b, c, bias):
        s = torch.einsum("bhnd,bhmd->bhnm", q, k)
        e = torch.einsum("...nd,...md->...nm", q, k)
        t = torch.einsum("ij,jk,kl->il", a, b, c)
        return s.sum() + e.sum() + t.sum() + torch.baddbmm(bias, q[0], k[0].transpose(1, 2)).sum()

    q, k = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 7, 4)
    a, b, c = torch.randn(5, 4), torch.randn(4, 7), torch.randn(7, 3)
    count = count_macs(Lambda(fn), (q, k, a, b, c, torch.zeros(3, 5, 7)))
    pairwise = 2 * 3 * 5 * 7 * 4
    chain = 5 * 4 * 7 + 5 * 7 * 3  # left to right: (5,4)(4,7), then (5,7)(7,3)
    assert count.by_op == {"einsum": 2 * pairwise + chain, "baddbmm": 3 * 5 * 7 * 4}


@pytest.mark.parametrize(
    ("q_shape", "k_shape", "v_dim", "mask"),
    [
        ((2, 3, 5, 8), (2, 3, 5, 8), 8, None),
        ((2, 3, 5, 8), (2, 3, 7, 8), 16, None),  # Lq != Lk, d_v != d_qk
        ((2, 3, 5, 8), (2, 3, 7, 8), 8, "bool"),
        ((1, 4, 6, 4), (1, 4, 9, 4), 4, "float"),
        ((2, 3, 5, 8), (2, 3, 5, 8), 8, "causal"),
    ],
)
def test_sdpa_counts_both_products_exactly(q_shape, k_shape, v_dim, mask):
    B, h, Lq, d = q_shape
    Lk = k_shape[2]
    kwargs = {}
    if mask == "bool":
        kwargs["attn_mask"] = torch.ones(Lq, Lk, dtype=torch.bool).tril()
    elif mask == "float":
        kwargs["attn_mask"] = torch.randn(B, 1, Lq, Lk)
    elif mask == "causal":
        kwargs["is_causal"] = True

    def fn(_, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, **kwargs)

    args = (torch.randn(q_shape), torch.randn(k_shape), torch.randn(*k_shape[:3], v_dim))
    c = count_macs(Lambda(fn), args)
    assert c.by_op == {"scaled_dot_product_attention": B * h * Lq * Lk * (d + v_dim)}
    assert c.uncounted == []
    # the explicit formulation counts the same
    ref = count_macs(Lambda(lambda _, q, k, v: (q @ k.transpose(-1, -2)).softmax(-1) @ v), args)
    assert ref.total == c.total


def test_sdpa_grouped_query_heads():
    def fn(_, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, enable_gqa=True)

    c = count_macs(
        Lambda(fn), (torch.randn(1, 4, 5, 8), torch.randn(1, 2, 6, 8), torch.randn(1, 2, 6, 8))
    )
    assert c.total == 1 * 4 * 5 * 6 * (8 + 8)


@pytest.mark.parametrize("modulated", [False, True])
def test_deform_conv2d_counts_like_the_conv(modulated):
    class DTM(nn.Module):
        """2x2 stride-2 deformable conv with offsets (and mask) from a plain conv."""

        def __init__(self, cin=6, cout=8, groups=2):
            super().__init__()
            self.offset = nn.Conv2d(cin, 2 * 2 * 2, 2, stride=2)
            self.mask = nn.Conv2d(cin, 2 * 2, 2, stride=2) if modulated else None
            self.weight = nn.Parameter(torch.randn(cout, cin // groups, 2, 2))

        def forward(self, x):
            mask = self.mask(x).sigmoid() if self.mask is not None else None
            return torchvision.ops.deform_conv2d(
                x, self.offset(x), self.weight, stride=2, mask=mask
            )

    x = torch.randn(2, 6, 10, 8)
    c = count_macs(DTM(), (x,))
    plain = count_macs(nn.Conv2d(6, 8, 2, stride=2, groups=2), (x,))
    assert c.by_op["deform_conv2d"] == plain.total == 2 * 8 * 5 * 4 * 3 * 4
    offsets = 2 * 8 * 5 * 4 * 6 * 4 + (2 * 4 * 5 * 4 * 6 * 4 if modulated else 0)
    assert c.by_op["conv"] == offsets
    assert c.uncounted == []


def test_uncounted_lists_unknown_compute_until_a_handle_is_given():
    def fn(_, a, b):
        return torch.cdist(a, b).sum()

    args = (torch.randn(2, 5, 3), torch.randn(2, 7, 3))
    bare = count_macs(Lambda(fn), args)
    assert bare.uncounted == ["aten::cdist"] and bare.total == 0

    def cdist_macs(inputs, outputs):  # one K-long difference-square-accumulate per distance
        return math.prod(outputs[0].type().sizes()) * inputs[0].type().sizes()[-1]

    handled = count_macs(Lambda(fn), args, extra_handles={"aten::cdist": cdist_macs})
    assert handled.uncounted == [] and handled.total == 2 * 5 * 7 * 3
    ignored = count_macs(Lambda(fn), args, extra_handles={"aten::cdist": None})
    assert ignored.uncounted == [] and "aten::cdist" in ignored.ignored and ignored.total == 0


def test_norms_counted_only_when_asked():
    class Norms(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln, self.bn = nn.LayerNorm(8), nn.BatchNorm2d(3)

        def forward(self, x, img):
            return self.ln(x).sum() + self.bn(img).sum()

    m = Norms().eval()
    args = (torch.randn(2, 5, 8), torch.randn(2, 3, 4, 4))
    off = count_macs(m, args)
    assert off.total == 0 and {"aten::layer_norm", "aten::batch_norm"} <= set(off.ignored)
    on = count_macs(m, args, count_norms=True)  # fvcore's rates: LN 5/elt, eval BN 2/elt
    assert on.by_op == {"layer_norm": 5 * 80, "batch_norm": 2 * 96}


def test_module_and_inputs_untouched_and_batch_scales():
    m = nn.Linear(8, 16)
    w = m.weight.detach().clone()
    x = torch.randn(3, 4, 8)
    assert count_macs(m, (x,)).total == 3 * 4 * 8 * 16
    assert m.weight.device.type == "cpu" and torch.equal(m.weight, w)
    assert x.device.type == "cpu"
    assert count_macs(m, x).total == 3 * 4 * 8 * 16  # a bare tensor is accepted too


def test_falls_back_to_cpu_batch_one_when_meta_refuses():
    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x):
            if x.abs().sum() > 0:  # needs real data: impossible on meta
                x = self.fc(x)
            return x

    c = count_macs(DataDependent(), (torch.randn(4, 3, 8),))
    assert c.traced_on == "cpu"
    assert c.total == c.by_op["linear"] == 4 * 3 * 8 * 8


def test_high_resolution_layer_counts_on_meta_without_memory():
    """MSA at 96x96 tokens: the attention matrix alone would be 12·9216²·4 B ≈ 4 GB."""
    from hilobench.attention import build_attention

    m = build_attention("msa", 768, 12, impl="reference")
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    t0 = time.perf_counter()
    c = layer_macs(m, 96, 96, batch=2)
    elapsed = time.perf_counter() - t0
    n, dim = 96 * 96, 768
    assert c.traced_on == "meta"
    assert c.total == 2 * (4 * n * dim * dim + 2 * n * n * dim)
    assert elapsed < 10
    assert proc.memory_info().rss - rss0 < 200 * 2**20


# ---------------------------------------------------------------------------------------------
# every registered attention: traced == analytic
# ---------------------------------------------------------------------------------------------

ATTENTIONS = ("hilo", "msa", "sra", "wmsa", "swmsa", "lsa", "gsa", "tmsa")
ZOO = ("cswin", "dat", "focal", "hornet", "linformer", "performer", "van", "xca")
TOKEN_MAPS = [(14, 14), (24, 24), (96, 96), (15, 13)]  # 224/16, 384/16, 1536/16, non-divisible


def _registered() -> list[str]:
    from hilobench.attention import available_attentions

    return available_attentions()


@functools.cache
def _layer(name: str, impl: str, hw: tuple[int, int] | None = None) -> nn.Module:
    """The layer at dim 768, 12 heads; one tied to its token count (``seq_len``: Linformer's
    learned projections) is built for the map ``hw``."""
    from hilobench.attention import build_attention
    from hilobench.core import options

    knobs = {}
    if hw is not None and options.takes("layer", name, "seq_len"):
        knobs["seq_len"] = hw[0] * hw[1]
    return build_attention(name, 768, 12, impl=impl, **knobs)


def test_all_expected_attentions_registered():
    assert set(ATTENTIONS) | set(ZOO) <= set(_registered())


@pytest.mark.parametrize("hw", TOKEN_MAPS, ids=lambda hw: f"{hw[0]}x{hw[1]}")
@pytest.mark.parametrize("impl", ["reference", "fused"])
@pytest.mark.parametrize("name", _registered())
def test_traced_equals_analytic(name, impl, hw):
    H, W = hw
    m = _layer(name, impl, hw)
    c = layer_macs(m, H, W)
    assert c.uncounted == []
    assert c.traced_on == "meta"
    assert c.total == m.macs(H, W), c.by_op


def test_sra_published_figure_includes_its_layernorm():
    """The single-layer table's SRA 419.56M (fvcore) charges the reduced-map LayerNorm 5 MACs
    per element; without it the same layer is 419.37M."""
    m = _layer("sra", "reference")
    with_ln, without = layer_macs(m, 14, 14), layer_macs(m, 14, 14, count_norms=False)
    assert round(with_ln.total / 1e6, 2) == 419.56
    assert with_ln.total - without.total == 5 * 7 * 7 * 768
    assert round(without.total / 1e6, 2) == 419.37


def test_mac_count_is_a_plain_record():
    c = MacCount(total=3, by_op={"linear": 3})
    assert c.uncounted == [] and c.ignored == [] and c.traced_on == "meta"


def test_traced_counts_reproduce_published_figures():
    """HiLo check value (dim 384, s=2, α=0.5) and the 14x14, dim-768 single-layer table."""
    from hilobench.attention import build_attention

    hilo = build_attention("hilo", 384, 12, window=2, alpha=0.5)
    assert layer_macs(hilo, 14, 14).total == 83_467_776
    table = {"msa": 521.43, "sra": 419.56, "wmsa": 477.17, "swmsa": 477.17, "hilo": 298.30}
    for name, mmacs in table.items():
        assert round(layer_macs(_layer(name, "fused"), 14, 14).total / 1e6, 2) == mmacs, name
