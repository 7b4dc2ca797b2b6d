"""Any registered attention inside LITv2 (stages 3 / 4) and PVT (stages 1-3 / 4).

Full-size models are built and traced on the meta device (shapes only); the real forward
passes use narrow configs and small images, so the file stays fast on two cores.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from hilobench.attention import available_attentions, build_attention
from hilobench.core.errors import ConfigError
from hilobench.measure.flops import count_macs
from hilobench.models import analytic_macs, build_model
from hilobench.models.litv2 import LITv2
from hilobench.models.pvt import PVT
from hilobench.models.swap import layer_name

ATTNS = available_attentions()
#: (model, res, attention) → the words of its one-line refusal
REFUSED = {
    ("litv2_s", 384, "linformer"): "stage 3 of LITv2-S (24x24 tokens, dim 384, 12 heads)",
    ("pvt_s", 224, "cswin"): "stage 1 of PVT-S (56x56 tokens, dim 64, 1 heads)",
    ("pvt_s", 384, "cswin"): "heads=1 is odd",
    ("pvt_s", 224, "dat"): "offset_groups (3) must divide heads (1)",
    ("pvt_s", 384, "dat"): "offset_groups (3) must divide heads (1)",
    ("pvt_s", 224, "linformer"): "the 56x56 map has 3136; build it for this map with --seq-len",
    ("pvt_s", 384, "linformer"): "the 96x96 map has 9216",
}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta(name: str, res: int, **opts: object) -> torch.nn.Module:
    with torch.device("meta"):
        return build_model(name, res=res, **opts).eval()


def traced(model: torch.nn.Module, res: int) -> int:
    c = count_macs(model, torch.empty(1, 3, res, res, device="meta"), count_norms=True)
    assert c.uncounted == []
    return c.total


def swapped_params(name: str, stages: list[tuple[int, int, int, int]]) -> int:
    """Parameters of the swapped layers, each built on its own: per stage (dim, heads,
    reduction ratio, depth)."""
    with torch.device("meta"):
        return sum(
            n_params(build_attention(layer_name(name, j), dim, heads, sr_ratio=sr))
            for dim, heads, sr, depth in stages
            for j in range(depth)
        )


@pytest.mark.parametrize("res", [224, 384])
@pytest.mark.parametrize("model", ["litv2_s", "pvt_s"])
@pytest.mark.parametrize("attn", ATTNS)
def test_every_attention_counts_exactly_or_is_refused_in_one_line(attn, model, res):
    words = REFUSED.get((model, res, attn))
    if words:
        with pytest.raises(ConfigError) as e:
            meta(model, res, attn=attn)
        assert words in str(e.value) and "\n" not in str(e.value)
        assert str(e.value).startswith(f"{attn} cannot be the attention of stage")
        return
    net = meta(model, res, attn=attn)
    assert traced(net, res) == analytic_macs(net, res)
    if res != 224:
        return  # the layers' parameters do not depend on the map
    # params exact: the model's own layers out, the swapped layers (built alone) in
    base = meta(model, res)
    if model == "litv2_s":
        own = sum(n_params(b.attn) for b in base.stages[2].blocks)
        want = n_params(base) - own + swapped_params(attn, [(384, 12, 2, 6)])
    else:
        own = sum(n_params(b.attn) for s in base.stages[:3] for b in s)
        stages = [(64, 1, 8, 3), (128, 2, 4, 4), (320, 5, 2, 6)]
        want = n_params(base) - own + swapped_params(attn, stages)
    assert n_params(net) == want


@pytest.mark.parametrize(("model", "res", "attn"), sorted(REFUSED))
def test_the_model_command_refuses_a_swap_in_one_line_before_measuring(
    model: str,
    res: int,
    attn: str,
    tmp_path: Path,
    cli: Callable[[list[str]], tuple[int, str, str]],
) -> None:
    out = tmp_path / "run"
    code, stdout, stderr = cli(
        ["model", model, "--attn", attn, "--res", str(res), "--out", str(out)]
    )
    assert code == 2 and stdout == "" and not out.exists()
    assert len(stderr.strip().splitlines()) == 1 and REFUSED[(model, res, attn)] in stderr


def test_linformer_sized_for_the_384_map_fits_litv2_s_stage_3_and_counts_exactly():
    """The refusal names the fix (--seq-len 576); with it the swap builds and both counts agree."""
    net = meta("litv2_s", 384, attn="linformer", seq_len=576)
    assert {b.attn.seq_len for b in net.stages[2].blocks} == {576}
    assert traced(net, 384) == analytic_macs(net, 384)


@pytest.mark.parametrize("attn", ["msa", "xca", "performer", "sra", "gsa"])
def test_token_set_attentions_take_the_pvt_class_token_at_stage_4(attn):
    net = meta("pvt_s", 224, attn4=attn)
    assert traced(net, 224) == analytic_macs(net, 224)


def test_map_bound_attention_refused_at_pvt_stage_4():
    with pytest.raises(ConfigError, match="stage 4 of PVT-S: that stage carries PVT's class"):
        meta("pvt_s", 224, attn4="wmsa")


def test_litv2_stage_4_swap_counts_and_defaults_to_global_msa():
    net = meta("litv2_s", 224, attn4="cswin", split_size=7)
    assert {type(b.attn).__name__ for b in net.stages[3].blocks} == {"CrossWindowAttention"}
    assert traced(net, 224) == analytic_macs(net, 224)
    default = meta("litv2_s", 224, attn="cswin").stages[3].blocks[0].attn
    assert (type(default).__name__, default.window) == ("HiLo", 1)


def test_knobs_reach_the_swapped_layers_and_pvt_keeps_its_ratios():
    net = meta("litv2_s", 224, attn="cswin", split_size=2)
    assert {b.attn.split_size for b in net.stages[2].blocks} == {2}
    pvt = meta("pvt_s", 224, attn="gsa")
    assert [s[0].attn.sr_ratio for s in pvt.stages] == [8, 4, 2, 1]  # stage 4: its own
    pvt = meta("pvt_s", 224, attn="gsa", sr=2)
    assert [s[0].attn.sr_ratio for s in pvt.stages[:3]] == [2, 2, 2]
    with pytest.raises(ConfigError, match="msa takes no split_size=7; attentions that do: cswin"):
        meta("litv2_s", 224, attn="msa", split_size=7)


def test_swapped_backbones_run_forward():
    """Narrow models with real weights: the swapped layers run, class token included."""
    lit = LITv2(
        16, (1, 1, 2, 1), (1, 2, 4, 8), num_classes=10, attn="quadtree", attn4="xca", topk=4
    )
    lit.eval()
    pvt = PVT(
        res=(64, 64), dims=(8, 16, 32, 64), depths=(1, 1, 1, 1), num_heads=(2, 2, 2, 2),
        num_classes=10, attn="focal", attn4="linformer", seq_len=5, proj_len=3,
    ).eval()  # fmt: skip
    with torch.no_grad():
        assert lit(torch.randn(1, 3, 64, 64)).shape == (1, 10)
        assert pvt(torch.randn(2, 3, 64, 64)).shape == (2, 10)
    assert count_macs(pvt, torch.randn(1, 3, 64, 64), count_norms=True).total == pvt.macs(64, 64)


def test_a_case_passes_layer_knobs_to_the_swapped_layers():
    """The measuring path: a Case's options become builder arguments (sr → sr_ratio)."""
    from hilobench.core.case import Case
    from hilobench.run.engine import build_subject

    case = Case("model", "pvt_s", res=224, batch=1, options=(("attn", "gsa"), ("sr", 2)))
    with torch.device("meta"):
        net = build_subject(case).module
    assert [s[0].attn.sr_ratio for s in net.stages] == [2, 2, 2, 1]
