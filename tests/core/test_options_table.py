"""The options table: one declaration per knob drives the CLI flags, suite validation and the
builders; an attention with a new knob is one registration, and a knob given to an attention
that does not take it is refused in one line naming those that do."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

import hilobench.cli.execute as cli_mod
from hilobench.attention import registry
from hilobench.attention.msa import MultiHeadSelfAttention
from hilobench.core import options
from hilobench.core.case import Case
from hilobench.core.errors import ConfigError
from hilobench.core.options import Knob
from hilobench.core.row import is_measured
from hilobench.run.engine import build_subject, validate_case
from hilobench.suite.loader import parse_suite

CliRunner = Callable[[list[str]], tuple[int, str, str]]

TINY = ["--dim", "32", "--heads", "2", "--tokens", "4x4", "--batch", "1"]
#: A knob no built-in attention has, declared only where the test attention registers.
GAIN = Knob("gain", "float", "Test: scale the output.", minimum=0.0, maximum=4.0)


@pytest.fixture
def gainy(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Register attention ``gainy`` with the new knob ``gain`` (and ``window``), here and only
    here; the table and the registry are restored afterwards."""
    from hilobench.models import available_models

    # every registration first, so that the copies hold them and none is lost on restoring
    registry.available_attentions()
    available_models()
    monkeypatch.setattr(options, "_KNOBS", dict(options._KNOBS))
    monkeypatch.setattr(options, "_TAKERS", copy.deepcopy(options._TAKERS))
    monkeypatch.setattr(registry.ATTENTIONS, "entries", dict(registry.ATTENTIONS.entries))

    @registry.register_attention(
        "gainy", "MSA with a scaled output", knobs={GAIN: 1.0, "window": 3}
    )
    class Gainy(MultiHeadSelfAttention):
        def __init__(
            self,
            dim: int,
            num_heads: int,
            qkv_bias: bool = True,
            impl: str = "reference",
            gain: float = 1.0,
            window: int = 3,
        ) -> None:
            super().__init__(dim, num_heads, qkv_bias, impl)
            self.gain = options.check("gain", gain)
            self.window = window

        def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
            return super().forward(x, H, W) * self.gain

    yield "gainy"


def _cases(monkeypatch: pytest.MonkeyPatch, cli: CliRunner, args: list[str]) -> list[Case]:
    """The cases ``hilobench ARGS`` would measure (nothing is measured)."""
    got: list[Case] = []
    monkeypatch.setattr(cli_mod, "execute", lambda cases, *_: got.extend(cases))
    code, _, stderr = cli(args)
    assert code == 0, stderr
    return got


def _refused(cli: CliRunner, args: list[str], *needles: str) -> None:
    code, stdout, stderr = cli(args)
    assert code == 2 and stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# --- a new attention with a new knob: one registration, nothing else ------------------------


def test_new_knob_gets_a_layer_flag(gainy: str, cli: CliRunner) -> None:
    code, stdout, _ = cli(["layer", "--help"])
    assert code == 0
    assert "--gain" in stdout and "--window" in stdout
    # a layer knob reaches the swapped layers of the models that take --attn
    assert "--gain" in cli(["model", "--help"])[1]


def test_plugin_attention_and_knob_reach_a_backbone_stage(
    gainy: str, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["model", "litv2_s", "--attn", "gainy", "--gain", "2.5", "--batch", "1"]
    (case,) = _cases(monkeypatch, cli, args)
    assert case.opts == {"attn": "gainy", "gain": 2.5}
    with torch.device("meta"):
        net = build_subject(case).module
    stage3 = [b.attn for b in net.stages[2].blocks]
    assert all(type(a).__name__ == "Gainy" and (a.gain, a.window) == (2.5, 3) for a in stage3)
    assert type(net.stages[3].blocks[0].attn).__name__ == "HiLo"  # stage 4: global MSA
    (case,) = _cases(monkeypatch, cli, ["model", "litv2_s", "--attn", "msa", "--gain", "2"])
    with pytest.raises(ConfigError, match="msa takes no gain=2.0; attentions that do: gainy"):
        validate_case(case)


def test_new_knob_reaches_the_case_and_the_layer(
    gainy: str, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    (case,) = _cases(monkeypatch, cli, ["layer", "--attn", "gainy", "--gain", "2.5", *TINY])
    assert case.opts == {"dim": 32, "heads": 2, "tokens": "4x4", "gain": 2.5}
    layer = build_subject(case).module
    assert isinstance(layer, MultiHeadSelfAttention) and (layer.gain, layer.window) == (2.5, 3)
    # the registration's default applies when the flag is not given
    (case,) = _cases(monkeypatch, cli, ["layer", "--attn", "gainy", *TINY])
    assert "gain" not in case.opts and build_subject(case).module.gain == 1.0


def test_new_knob_measured_end_to_end(gainy: str, cli: CliRunner, tmp_path: Path) -> None:
    args = ["layer", "--attn", "gainy", "--gain", "0.5", *TINY, "--budget", "0.05",
            "--no-roofline", "--out", str(tmp_path / "r"), "--format", "json"]  # fmt: skip
    code, stdout, stderr = cli(args)
    assert code == 0, stderr
    (row,) = json.loads(stdout)
    assert is_measured(row) and row["options"]["gain"] == 0.5


def test_new_knob_checked_and_refused_on_the_cli(gainy: str, cli: CliRunner) -> None:
    _refused(cli, ["layer", "--attn", "gainy", "--gain", "9"], "--gain", "[0, 4]", "9")
    _refused(cli, ["layer", "--attn", "msa", "--gain", "2"], "--gain", "gainy")


def test_new_knob_in_a_suite(gainy: str) -> None:
    s = parse_suite(
        {
            "defaults": {"dim": 32, "heads": 2, "gain": 2.0},
            "cases": [
                {"layer": "gainy", "id": "g", "gain": [0.5, 1.5]},
                {"layer": ["gainy", "msa"]},  # the default gain applies to gainy only
            ],
        }
    )
    assert [sc.case.opts.get("gain") for sc in s.cases] == [0.5, 1.5, 2.0, None]
    with pytest.raises(ConfigError, match=r"case 1 \(g\): field 'gain': gain must be .*got 9"):
        parse_suite({"cases": [{"layer": "gainy", "id": "g", "gain": 9}]})
    with pytest.raises(ConfigError, match="field 'gain': msa takes no 'gain'.* that do: gainy"):
        parse_suite({"cases": [{"layer": "msa", "gain": 1.0}]})


def test_knob_declarations_are_checked() -> None:
    with pytest.raises(ValueError, match="taken by a case field"):
        Knob("batch", "int", "clashes with the case field")
    with pytest.raises(ValueError, match="already declared differently"):
        options.declare(Knob("window", "float", "another window"))
    with pytest.raises(ValueError, match="unknown knob 'nope'"):
        registry.register_attention("x", "x", knobs={"nope": 1})(MultiHeadSelfAttention)
    with pytest.raises(ValueError, match="every attention takes 'dim'"):
        registry.register_attention("x", "x", knobs={"dim": 1})(MultiHeadSelfAttention)
    assert "x" not in registry.available_attentions()


# --- built-in knobs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "attn, flag, takers",
    [
        ("msa", ["--window", "4"], "hilo, lsa, swmsa, tmsa, wmsa"),
        ("msa", ["--alpha", "0.5"], "hilo"),
        ("hilo", ["--sr", "4"], "gsa, sra, tmsa"),
        ("sra,gsa", ["--no-rel-pos"], "swmsa, wmsa"),
    ],
)
def test_knob_for_an_attention_that_does_not_take_it(
    attn: str, flag: list[str], takers: str, cli: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "never"
    _refused(cli, ["layer", "--attn", attn, *flag, "--out", str(out)], flag[0], takers)
    assert not out.exists()


def test_knob_applies_where_taken_among_several(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = _cases(monkeypatch, cli, ["layer", "--attn", "hilo,msa", "--alpha", "0.5"])
    assert {c.name: c.opts.get("alpha") for c in cases} == {"hilo": 0.5, "msa": None}
    # flags left at their defaults change no case (and are refused nowhere)
    (case,) = _cases(monkeypatch, cli, ["layer", "--attn", "msa", "--rel-pos"])
    assert case.opts == {"dim": 768, "heads": 12}


def test_table_maps_knobs_to_builder_arguments() -> None:
    assert options.builder_kwargs("layer", {"sr": 4, "dim": 64, "tokens": "7x7"}) == {
        "sr_ratio": 4,
        "dim": 64,
        "num_heads": 12,
    }
    assert options.get("sr").flag == "--sr" and options.get("rel_pos").flag == "--rel-pos"
    with pytest.raises(ConfigError, match="unknown layer option 'shift'"):
        options.builder_kwargs("layer", {"shift": 3})


def test_registries_read_their_knob_lists_from_the_table() -> None:
    from hilobench.attention import get_attention
    from hilobench.models import available_models, build_model

    available_models()
    assert get_attention("tmsa").knobs == ("window", "sr")
    assert options.takers("layer", "sr") == ["gsa", "sra", "tmsa"]
    assert "litv1_s" in options.takers("model", "dtm")
    assert "litv1_s" not in options.takers("model", "alpha")
    with pytest.raises(ConfigError, match="model 'litv1_s' takes no alpha=0.5; models that do"):
        build_model("litv1_s", alpha=0.5)
    with pytest.raises(ConfigError, match="alpha must be a number in \\[0, 1\\], got 2"):
        build_model("litv2_s", alpha=2)
    with pytest.raises(ConfigError, match="msa takes no window; attentions that do: hilo"):
        build_subject(Case("layer", "msa", options=(("window", 3),)))
