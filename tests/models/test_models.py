"""Backbones: published counts, analytic = traced MACs, resolutions, options, registry, timm rows.

Full-size models are built on the meta device (shapes only) for counts and traces; real
forward passes use small images or narrow configs so the file stays fast on two cores.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest
import timm
import torch

from hilobench.attention import set_impl
from hilobench.core import plugins
from hilobench.core.errors import ConfigError
from hilobench.measure.flops import count_macs
from hilobench.models import (
    LITv1,
    LITv2,
    ModelEntry,
    analytic_macs,
    available_models,
    build_model,
    get_model,
    impls_for,
    published_macs,
    registry,
    resolve_models,
)
from hilobench.models.litv2 import STAGE3_ATTNS

#: name, res, params (M), GMACs as published (LITv2 README / paper)
REFERENCE = [
    ("litv2_s", 224, 27.84, 3.734),
    ("litv2_m", 224, 48.83, 7.479),
    ("litv2_b", 224, 86.52, 13.194),
    ("litv2_b_384", 384, 86.52, 39.709),
    ("litv1_s", 224, 27.97, 4.082),
    ("litv1_m", 224, 49.37, 8.599),
    ("litv1_b", 224, 87.29, 15.037),
]


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_model(name: str, **kwargs) -> torch.nn.Module:
    with torch.device("meta"):
        return build_model(name, **kwargs).eval()


def traced(model: torch.nn.Module, H: int, W: int) -> int:
    count = count_macs(model.eval(), torch.empty(1, 3, H, W, device="meta"), count_norms=True)
    assert count.uncounted == []
    return count.total


def tiny_litv2(**kwargs) -> LITv2:
    """A narrow LITv2 with every kind of block, for cheap real forward passes."""
    cfg = dict(embed_dim=16, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8), num_classes=10)
    return LITv2(**(cfg | kwargs)).eval()


# --- counts -------------------------------------------------------------------------------


@pytest.mark.parametrize("name, res, params_m, gmacs", REFERENCE, ids=[r[0] for r in REFERENCE])
def test_reference_counts(name, res, params_m, gmacs):
    model = meta_model(name, res=res)
    assert get_model(name).default_res == res
    assert round(n_params(model) / 1e6, 2) == params_m
    macs = analytic_macs(model, res)
    assert abs(macs / 1e9 - gmacs) / gmacs < 0.005  # hilobench convention, within 0.5%
    # the authors' bookkeeping reproduces the printed figure to every digit
    assert round(published_macs(model, res, res) / 1e9, 3) == gmacs


@pytest.mark.parametrize(
    "name, params_m, gmacs", [("pvt_s", 24.49, 3.833), ("pvt_m", 44.21, 6.685)]
)
def test_pvt_counts_near_paper(name, params_m, gmacs):
    model = meta_model(name)
    assert round(n_params(model) / 1e6, 2) == params_m
    assert round(analytic_macs(model, 224) / 1e9, 3) == gmacs
    # the PVT paper prints 24.5M / 3.8G and 44.2M / 6.7G (the LITv2 table rounds 24.5 up to 25)
    paper = {"pvt_s": (24.5, 3.8), "pvt_m": (44.2, 6.7)}[name]
    assert (round(params_m, 1), round(gmacs, 1)) == paper


@pytest.mark.parametrize(
    "name, res",
    [
        ("litv2_s", (224, 224)),
        ("litv2_s", (70, 90)),
        ("litv1_s", (224, 224)),
        ("pvt_s", (224, 224)),
    ],
)
def test_traced_equals_analytic(name, res):
    model = meta_model(name, res=res)
    assert traced(model, *res) == analytic_macs(model, res)


@pytest.mark.parametrize("attn", list(STAGE3_ATTNS))
def test_stage3_attention_replacement(attn):
    model = meta_model("litv2_s", attn=attn)
    attns = [b.attn for b in model.stages[2].blocks]
    assert all(a is not None for a in attns)
    assert traced(model, 224, 224) == analytic_macs(model, 224)
    tiny = tiny_litv2(attn=attn)
    assert tiny(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_stage3_alternation_and_knobs():
    model = meta_model("litv2_s", attn="tmsa", window=4)
    kinds = [type(b.attn).__name__ for b in model.stages[2].blocks]
    assert kinds[:2] == ["LocallyGroupedAttention", "SpatialReductionAttention"]
    assert model.stages[2].blocks[0].attn.window == 4
    hilo = meta_model("litv2_s", alpha=0.5, window=4).stages[2].blocks[0].attn
    assert (hilo.alpha, hilo.window, hilo.l_heads) == (0.5, 4, 6)
    assert meta_model("litv2_s").stages[3].blocks[0].attn.window == 1  # stage 4: global MSA


# --- resolutions --------------------------------------------------------------------------


def test_litv2_small_and_odd_resolutions():
    model = build_model("litv2_s").eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 1000)
        assert model(torch.randn(1, 3, 70, 90)).shape == (1, 1000)
    assert model.stage_sizes(70, 90) == [(18, 23), (9, 11), (4, 5), (2, 2)]  # merging floors


@pytest.mark.parametrize("hw", [(800, 1280), (512, 512)])
def test_litv2_dense_prediction_shapes_on_meta(hw):
    model = meta_model("litv2_s")
    feats = model.forward_features(torch.empty(1, 3, *hw, device="meta"))
    expect = [(96 * 2**i, hw[0] // 2 ** (i + 2), hw[1] // 2 ** (i + 2)) for i in range(4)]
    assert [tuple(f.shape[1:]) for f in feats] == expect
    assert [s for s in model.stage_sizes(*hw)] == [e[1:] for e in expect]
    assert analytic_macs(model, hw) > analytic_macs(model, 224)


def test_fused_matches_reference_litv2_s():
    torch.manual_seed(0)
    ref = build_model("litv2_s", impl="reference").eval()
    fused = build_model("litv2_s", impl="fused").eval()
    fused.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a, b = ref(x), fused(x)
        assert ((a - b).abs().max() / a.abs().max()).item() <= 1e-5
        set_impl(ref, "fused")
        assert torch.allclose(ref(x), b, rtol=0, atol=1e-6)


def test_dtm_conv_variant():
    deform, conv = tiny_litv2(), tiny_litv2(dtm="conv")
    sd = deform.state_dict()
    assert any(k.endswith("offset.weight") for k in sd)
    conv.load_state_dict({k: v for k, v in sd.items() if ".offset." not in k}, strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():  # zero-initialised offsets: deformable conv == plain conv
        assert torch.allclose(deform(x), conv(x), atol=1e-5)
    full = meta_model("litv2_s", dtm="conv")
    assert (
        traced(full, 224, 224)
        == analytic_macs(full, 224)
        < analytic_macs(meta_model("litv2_s"), 224)
    )


def test_resolution_tied_models():
    v1 = LITv1(res=(70, 90), embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8)).eval()
    assert v1(torch.randn(1, 3, 70, 90)).shape == (1, 1000)
    with pytest.raises(ConfigError, match="64x64"):
        v1(torch.randn(1, 3, 64, 64))
    with pytest.raises(ConfigError, match="96x96"):
        analytic_macs(meta_model("pvt_s"), 96)
    # LITv1 / PVT are built for the requested size: the tables/embeddings grow with it
    assert n_params(meta_model("litv1_s", res=384)) > n_params(meta_model("litv1_s"))
    assert n_params(meta_model("pvt_s", res=384)) > n_params(meta_model("pvt_s"))


def test_fixed_res_models_take_the_small_sizes_they_are_not_given():
    from hilobench.models.focal_tiny import FocalTransformer

    heads = (1, 1, 2, 2)
    for model in (
        LITv1(res=(64, 64), embed_dim=8, num_heads=heads),
        FocalTransformer(res=(64, 64), embed_dim=8, num_heads=heads, depths=(1, 1, 2, 1)),
    ):
        depths = [len(s.blocks) for s in model.stages]
        assert model.dims == [8, 16, 32, 64] and model.head.num_classes == 1000
        assert depths == ([2, 2, 6, 2] if isinstance(model, LITv1) else [1, 1, 2, 1])
        assert model.stages[2].blocks[0].ffn.hidden == 4 * 32
        assert model.patch_embed.in_chans == 3 and model.res == (64, 64)
    assert [b.attn is None for s in model.stages for b in s.blocks] == [False] * 5
    with pytest.raises(TypeError, match="embed_dm"):
        LITv1(res=(64, 64), embed_dm=8)  # type: ignore[call-arg]


def test_pvt_forward_odd_resolution():
    from hilobench.models.pvt import PVT

    model = PVT(res=(70, 90), dims=(8, 16, 40, 64), depths=(1, 1, 1, 1), num_classes=5).eval()
    assert model(torch.randn(2, 3, 70, 90)).shape == (2, 5)
    assert traced(model, 70, 90) == analytic_macs(model, (70, 90))


# --- registry -----------------------------------------------------------------------------


def test_registry_errors(monkeypatch):
    with pytest.raises(ConfigError, match="litv2_s.*swin_t"):
        get_model("litv3_s")
    gone = ModelEntry("gone_net", "Gone", "gone", "unavailable", None, 224, reason="no code")
    monkeypatch.setitem(registry.MODELS.entries, "gone_net", gone)
    with pytest.raises(ConfigError, match="'gone_net' \\(Gone\\) is unavailable: no code"):
        build_model("gone_net")
    with pytest.raises(ConfigError, match="alpha"):
        build_model("litv1_s", alpha=0.5)
    with pytest.raises(ConfigError, match="dtm='conv'"):
        build_model("resnet50", dtm="conv")
    with pytest.raises(ConfigError, match="window"):
        build_model("litv2_s", attn="msa", window=7)
    with pytest.raises(ConfigError, match="'gqa'"):
        build_model("litv2_s", attn="gqa")
    with pytest.raises(ConfigError, match="window must be an integer >= 1, got 0"):
        build_model("litv2_s", attn="wmsa", window=0)
    with pytest.raises(ConfigError, match="-3"):
        build_model("litv2_s", res=-3)
    with pytest.raises(ConfigError, match="no_such_net"):
        get_model("timm:no_such_net")


def test_table_rows():
    rows = {e.name: e for e in available_models()}
    assert rows["litv2_b_384"].display == "LITv2-B@384"
    assert rows["convnext_t"].display == "ConvNext-Ti"
    assert meta_model("deit_b_384").patch_embed.img_size == (384, 384)  # res defaults per row
    assert {n for n, e in rows.items() if e.default_res == 384} == {
        "litv2_b_384",
        "swin_b_384",
        "deit_b_384",
    }
    # every row of the paper's tables is buildable; CvT-13 and Focal-Tiny are built here
    assert {n for n, e in rows.items() if e.source == "unavailable"} == set()
    assert rows["cvt_13"].source == rows["focal_tiny"].source == "hilobench"


def test_cvt_and_focal_are_missing_from_timm():
    """Why hilobench builds CvT-13 and Focal-Tiny itself."""
    import timm

    assert timm.list_models("*cvt*") == []
    assert timm.list_models("focal_*") == []  # only focalnet_*, a different model


#: params_m of the paper's ImageNet table for the rows timm provides
PAPER_PARAMS_M = {
    "ResNet-50": 26, "ConvNext-Ti": 28, "Swin-Ti": 28, "Twins-PCPVT-S": 24,
    "ResNet-101": 45, "ConvNext-S": 50, "Twins-SVT-B": 56, "Swin-S": 50,
    "ResNet-152": 60, "ConvNext-B": 89, "Twins-SVT-L": 99, "Swin-B": 88,
    "DeiT-B@384": 86, "Swin-B@384": 88,
}  # fmt: skip
#: printed truncated, not rounded (as their own papers print them: 28M, 86M)
TRUNCATED = {"ConvNext-Ti", "DeiT-B@384"}


def test_timm_params_match_paper_table():
    checked = 0
    for entry in available_models():
        if entry.source != "timm" or entry.display not in PAPER_PARAMS_M:
            continue
        ours = n_params(meta_model(entry.name, res=entry.default_res)) / 1e6
        got = int(ours) if entry.display in TRUNCATED else round(ours)
        assert got == PAPER_PARAMS_M[entry.display], (entry.display, ours)
        checked += 1
    assert checked == len(PAPER_PARAMS_M)


def test_timm_forward_and_impl():
    model = build_model("resnet50", res=64, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 7)
    assert analytic_macs(model, 64) is None
    for name in ("swin_t", "pvtv2_b2"):
        # reference: every timm attention on the explicit path; fused: as timm itself sets it
        ref, fused = (meta_model(name, impl=impl) for impl in ("reference", "fused"))
        with torch.device("meta"):
            own = timm.create_model(get_model(name).timm_name, pretrained=False)
        assert {m.fused_attn for m in ref.modules() if hasattr(m, "fused_attn")} == {False}
        assert [m.fused_attn for m in fused.modules() if hasattr(m, "fused_attn")] == [
            m.fused_attn for m in own.modules() if hasattr(m, "fused_attn")
        ]
    assert get_model("timm:vit_tiny_patch16_224").source == "timm"


def test_timm_names_and_paths():
    """timm's full names reach our rows; ``--impl both`` gives both rows only where timm enables
    a fused attention by default (Swin's is off in timm, a CNN has none)."""
    assert get_model("convnext_tiny").name == "convnext_t"
    assert get_model("swin_tiny_patch4_window7_224").name == "swin_t"
    assert resolve_models(["resnet50", "convnext_tiny", "convnext_t"]) == ["resnet50", "convnext_t"]
    assert resolve_models(["litv2_b*"]) == ["litv2_b", "litv2_b_384"]
    assert resolve_models(["*window12*"]) == ["swin_b_384"]  # a glob over timm's names too
    assert "cait_xs24_384" not in get_model("cait_xs24").aliases  # measured at 224 here
    assert impls_for(get_model("pvtv2_b2"), "both") == ["reference", "fused"]
    assert impls_for(get_model("swin_t"), "both") == ["fused"]
    assert impls_for(get_model("resnet50"), "both") == ["fused"]
    assert impls_for(get_model("resnet50"), "reference") == ["reference"]
    assert impls_for(get_model("litv2_s"), "both") == ["reference", "fused"]


def test_plugin_entry_point(monkeypatch):
    entry = ModelEntry(
        "plug_net", "Plug", "plug", "hilobench", lambda **kw: torch.nn.Identity(), 224
    )
    ep = EntryPoint("plug", "plugmod:entry", "hilobench.models")
    monkeypatch.setattr(EntryPoint, "load", lambda self: entry)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [ep])
    monkeypatch.setattr(plugins, "_groups_loaded", set())
    monkeypatch.setitem(registry.MODELS.entries, "plug_net", entry)  # restored after the test
    registry.MODELS.entries.pop("plug_net")
    assert get_model("plug_net") is entry
    assert isinstance(build_model("plug_net"), torch.nn.Identity)
