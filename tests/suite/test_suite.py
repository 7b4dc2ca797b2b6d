"""Suites: every shipped file validates; broken ones fail with one line naming file/case/field;
expansion, points, defaults and compare groups do what the schema promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from hilobench.cli.app import main
from hilobench.core.errors import ConfigError
from hilobench.core.plan import select
from hilobench.suite.loader import find_suite, load_suite, parse_suite, shipped_suites

SUITES = Path(__file__).resolve().parents[2] / "suites"
SHIPPED = sorted(p.name for p in SUITES.glob("*.yaml"))
TINY = {"batch": 2, "dim": 64, "heads": 4, "budget": 0.2}


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def test_expected_suites_are_shipped() -> None:
    for name in (
        "paper_imagenet",
        "attention_layers",
        "resolution_sweep",
        "hilo_ablation",
        "dense",
        "ci_smoke",
    ):
        assert f"{name}.yaml" in SHIPPED
    assert {p.name for p in shipped_suites(SUITES)} == set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_suite_validates(name: str) -> None:
    if name == "runtimes.yaml":  # its cases need the runtime extras (`make install` has them)
        pytest.importorskip("onnxruntime")
        pytest.importorskip("openvino")
    s = load_suite(SUITES / name, check_cases=True)
    assert s.cases and s.description
    assert len({sc.case.key for sc in s.cases}) == len(s.cases)


def test_shipped_suite_contents() -> None:
    imagenet = load_suite(SUITES / "paper_imagenet.yaml")
    names = {sc.case.name for sc in imagenet.cases}
    assert len(names) == 25 and {"resnet50", "litv2_b_384", "deit_b_384", "cvt_13"} <= names
    assert {sc.case.mode for sc in imagenet.cases} == {"infer", "train"}
    assert all(sc.case.batch == 64 for sc in imagenet.cases)
    res = {sc.case.name: sc.case.res for sc in imagenet.cases}
    assert res["litv2_b_384"] == (384, 384) and res["swin_t"] == (224, 224)

    layers = load_suite(SUITES / "attention_layers.yaml")
    assert {sc.case.name for sc in layers.cases} == {
        "hilo", "msa", "sra", "wmsa", "swmsa", "tmsa", "lsa", "gsa",
        "cswin", "dat", "focal", "xca", "performer", "linformer", "van", "hornet", "quadtree",
    }  # fmt: skip
    for sc in layers.cases:
        o = sc.case.opts
        assert (o["dim"], o["heads"], sc.case.batch, sc.case.res) == (768, 12, 64, (224, 224))
        if sc.case.name in ("wmsa", "swmsa"):
            assert o["rel_pos"] is False
    assert len(layers.compare) == 1 and layers.compare[0].reference == "msa"

    sweep = load_suite(SUITES / "resolution_sweep.yaml")
    toks = {sc.case.opts.get("tokens") for sc in sweep.cases}
    assert {"28x28", "192x192", None} <= toks
    assert {sc.case.res[0] for sc in sweep.cases} >= {224, 1536}

    ablation = load_suite(SUITES / "hilo_ablation.yaml")
    sweep = [sc for sc in ablation.cases if sc.id == "alpha_window"]
    assert len({(sc.case.opts["alpha"], sc.case.opts["window"]) for sc in sweep}) == 14
    from hilobench.attention import available_attentions

    swapped = {
        (sc.case.res[0], sc.case.opts["attn"]) for sc in ablation.cases if "attn" in sc.case.opts
    }
    every = set(available_attentions())
    assert {a for r, a in swapped if r == 224} == every  # the paper's table, all 17
    assert {a for r, a in swapped if r == 384} == every  # Linformer built for 24x24 there
    assert {sc.case.opts.get("seq_len") for sc in ablation.cases if sc.id.endswith("_384")} == {576}
    layers = {(sc.case.res[0], sc.case.name) for sc in ablation.cases if sc.case.kind == "layer"}
    assert {n for _, n in layers} == every and all(
        sc.case.opts["dim"] == 384 for sc in ablation.cases if sc.case.kind == "layer"
    )

    dense = load_suite(SUITES / "dense.yaml")
    assert {sc.case.res for sc in dense.cases} == {(800, 1280), (512, 512)}
    assert all(sc.case.batch == 1 for sc in dense.cases)

    smoke = load_suite(SUITES / "ci_smoke.yaml")
    assert len(smoke.compare) == 1 and len(smoke.claims) == 1


def test_expansion_product_points_and_defaults() -> None:
    s = parse_suite(
        {
            "defaults": {**TINY, "alpha": 0.5},
            "cases": [
                {"layer": ["hilo", "msa"], "res": [224, "160x224"], "impl": "both"},
                {
                    "layer": "wmsa",
                    "rel_pos": False,
                    "points": [{"res": [224, 320]}, {"res": 224, "tokens": "28x28"}],
                },
            ],
        }
    )
    labels = [(sc.id, sc.case.res, sc.case.impl) for sc in s.cases]
    assert len(labels) == 2 * 2 * 2 + 3
    assert labels[0] == ("hilo", (224, 224), "reference")
    # an inherited knob is dropped where it does not apply (MSA has no alpha)
    assert all("alpha" not in sc.case.opts for sc in s.cases if sc.case.name == "msa")
    assert all(sc.case.opts["alpha"] == 0.5 for sc in s.cases if sc.case.name == "hilo")
    wmsa = [sc.case for sc in s.cases if sc.case.name == "wmsa"]
    assert [(c.res, c.opts.get("tokens")) for c in wmsa] == [
        ((224, 224), None),
        ((320, 320), None),
        ((224, 224), "28x28"),
    ]


def test_overrides_beat_cases_and_model_default_res() -> None:
    s = parse_suite(
        {
            "cases": [
                {"layer": "msa", "budget": 9, **{k: TINY[k] for k in ("dim", "heads")}},
                {"model": "litv2_b_384"},
            ]
        },
        overrides={"budget": 0.5, "batch": 3},
    )
    assert [sc.case.budget for sc in s.cases] == [0.5, 0.5]
    assert [sc.case.batch for sc in s.cases] == [3, 3]
    assert s.cases[1].case.res == (384, 384)


def test_names_resolve_as_on_the_command_line() -> None:
    """A suite takes globs and timm's full names, resolved as `hilobench layer/model` does."""
    from hilobench.attention import resolve_attentions
    from hilobench.models import resolve_models

    s = parse_suite({"defaults": TINY, "cases": [{"layer": ["*msa", "hilo"]}]})
    assert [sc.case.name for sc in s.cases] == [*resolve_attentions(["*msa"]), "hilo"]
    assert {sc.case.name for sc in s.cases} >= {"msa", "swmsa", "tmsa", "wmsa", "hilo"}
    s = parse_suite({"cases": [{"model": ["convnext_tiny", "litv2_*"]}]})
    names = [sc.case.name for sc in s.cases]
    assert names == resolve_models(["convnext_tiny", "litv2_*"])
    assert names[0] == "convnext_t" and len(names) > 2
    assert all(n.startswith("litv2_") for n in names[1:])


def test_compare_groups_match_settings() -> None:
    base = {"defaults": TINY, "cases": [{"layer": ["hilo", "msa"], "res": [224, 320]}]}
    s = parse_suite({**base, "compare": {"name": "g", "pattern": "*", "reference": "msa"}})
    assert s.compare[0].members == ("hilo", "msa")
    from hilobench.core.plan import plan

    units = plan(s.cases, s.compare)
    assert [[sc.case.res[0] for sc in u.items] for u in units] == [[224, 224], [320, 320]]
    assert all(u.items[u.ref].id == "msa" for u in units)
    bad = {
        "defaults": TINY,
        "cases": [{"layer": "hilo", "res": [224, 320]}, {"layer": "msa", "res": 224}],
    }
    with pytest.raises(ConfigError, match="exactly one 'msa' case at every setting"):
        parse_suite({**bad, "compare": {"members": "all", "reference": "msa"}})


def test_select_filters_by_id_name_or_glob() -> None:
    s = parse_suite({"defaults": TINY, "cases": [{"layer": ["hilo", "msa", "sra"]}]})
    assert [sc.id for sc in select(s.cases, "hilo,sr")] == ["hilo", "sra"]
    assert [sc.id for sc in select(s.cases, "m*")] == ["msa"]
    assert select(s.cases, None) == s.cases


def test_find_suite_by_name() -> None:
    assert find_suite("ci_smoke").name == "ci_smoke.yaml"
    with pytest.raises(ConfigError, match="not found; give a suite file or a shipped .*ci_smoke"):
        find_suite("no_such_suite")


BROKEN = [
    (
        "cases:\n  - layer: hilo\n    bacth: 4\n",
        ["case 1 (hilo)", "'bacth'", "unknown field", "did you mean 'batch'"],
    ),
    (
        "cases:\n  - layer: msa\n  - layer: hilox\n",
        ["case 2", "field 'layer'", "'hilox'", "msa", "did you mean 'hilo'"],
    ),
    ("cases:\n  - layer: msa\n    batch: sixty\n", ["case 1 (msa)", "field 'batch'", "'sixty'"]),
    ("cases:\n  - layer: hilo\n    alpha: 1.5\n", ["case 1 (hilo)", "field 'alpha'", "1.5"]),
    ("cases:\n  - layer: msa\n    heads: 5\n", ["case 1 (msa)", "heads=5", "dim=768"]),
    ("cases:\n  - layer: msa\n    res: abc\n", ["case 1 (msa)", "field 'res'", "'abc'"]),
    ("cases:\n  - layer: msa\n    attn: hilo\n", ["case 1 (msa)", "'attn'", "model option"]),
    ("cases:\n  - layer: msa\n    alpha: 0.5\n", ["case 1 (msa)", "field 'alpha'", "hilo"]),
    ("cases:\n  - layer: msa\n    compile: 1\n", ["field 'compile'", "true or false"]),
    ("cases:\n  - model: no_such_net\n", ["case 1 (no_such_net)", "field 'model'"]),
    ("defaults:\n  dtype: float64\ncases:\n  - layer: msa\n", ["defaults", "'dtype'", "float64"]),
    ("cases:\n  - layer: msa\n  - layer: msa\n", ["case 2 (msa)", "already used by case 1"]),
    ("cases:\n  - {layer: msa}\ncompare: {members: [msa, hilo]}\n", ["compare", "'hilo'"]),
    (
        "cases:\n  - {layer: msa}\nclaims:\n  - {a: msa, b: msa, metric: fps, min_ratio: 1}\n",
        ["claim 1", "field 'metric'", "'fps'"],
    ),
    (
        "cases:\n  - {layer: msa}\nclaims:\n  - {a: msa, b: sra, min_ratio: 1}\n",
        ["claim 1", "field 'b'", "'sra'"],
    ),
    ("cases:\n  - layer: '*nothing*'\n", ["case 1", "field 'layer'", "'*nothing*'", "matches no"]),
    ("cases:\n  - {layer: '*msa', id: x}\n", ["case 1 (x)", "an id needs a single layer"]),
    ("cases: [\n", ["invalid YAML"]),
    ("casez:\n  - layer: msa\n", ["unknown top-level field 'casez'"]),
    ("cases: []\n", ["field 'cases'", "non-empty"]),
]


@pytest.mark.parametrize("text, needles", BROKEN)
def test_broken_suite_one_line_exit_2(
    text: str, needles: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    code, stdout, stderr = run_cli(["suite", "validate", str(path)], capsys)
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and stdout == ""
    assert str(path) in lines[0]
    for needle in needles:
        assert needle in lines[0]


def test_broken_suite_run_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "broken.yaml"
    path.write_text("cases:\n  - layer: msa\n    batch: 0\n")
    out = tmp_path / "never"
    code, _, stderr = run_cli(["suite", "run", str(path), "--out", str(out)], capsys)
    assert code == 2 and "field 'batch'" in stderr
    assert not out.exists()


def test_bad_set_and_filter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("cases:\n  - {layer: msa, dim: 64, heads: 4}\n")
    code, _, stderr = run_cli(["suite", "run", str(path), "--set", "dim=32"], capsys)
    assert code == 2 and "cannot override 'dim'" in stderr
    code, _, stderr = run_cli(["suite", "run", str(path), "--filter", "nothing"], capsys)
    assert code == 2 and "matches no case" in stderr


def test_suite_list_shows_shipped(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    code, stdout, _ = run_cli(["suite", "list", "--dir", str(SUITES)], capsys)
    assert code == 0
    for name in ("ci_smoke", "attention_layers", "paper_imagenet"):
        assert name in stdout
    # the one table style (a rule under the header, no box), within 100 columns
    assert "─" in stdout and "┃" not in stdout and "│" not in stdout
    assert max(len(line) for line in stdout.splitlines()) <= 100
    code, stdout, _ = run_cli(["suite", "validate", "ci_smoke", "--cases"], capsys)
    assert code == 0 and "hilo/reference 224 b4 float32 infer" in stdout and "│" not in stdout


def test_gate_settings_and_per_case_min_effect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`gate:` tunes the regression gate; a per-case min_effect is kept out of the identity."""
    from hilobench.gate.policy import SpeedPolicy, suite_policies

    p = tmp_path / "g.yaml"
    p.write_text(
        "gate: {min_effect: 0.15, significance: 0.02}\n"
        "defaults: {dim: 64, heads: 4, batch: 2}\n"
        "cases:\n"
        "  - {layer: hilo, min_effect: 0.3}\n"
        "  - {layer: msa}\n"
    )
    s = load_suite(p)
    assert s.gate == {"min_effect": 0.15, "significance": 0.02}
    assert capsys.readouterr().err == ""
    assert suite_policies(s, SpeedPolicy()).default.alpha == 0.02
    # the old spelling still works, with a one-line note; both at once is refused
    p.write_text(p.read_text().replace("significance", "alpha"))
    assert load_suite(p).gate == s.gate
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'alpha' is now 'significance'" in err[0]
    p.write_text(p.read_text().replace("alpha: 0.02", "alpha: 0.02, significance: 0.02"))
    with pytest.raises(ConfigError, match="old spelling of 'significance'"):
        load_suite(p)
    p.write_text(p.read_text().replace("alpha: 0.02, significance: 0.02", "significance: 2"))
    with pytest.raises(ConfigError, match=r"gate: field 'significance'.*\(0, 1\)"):
        load_suite(p)
    p.write_text(p.read_text().replace("significance: 2", "significance: 0.02"))
    by_id = {sc.id: sc for sc in s.cases}
    assert by_id["hilo"].min_effect == 0.3 and by_id["msa"].min_effect is None
    assert "min_effect" not in by_id["hilo"].case.opts
    p.write_text(p.read_text().replace("min_effect: 0.3", "min_effect: 0.0"))
    with pytest.raises(ConfigError, match="min_effect"):
        load_suite(p)
    p.write_text("gate: {speed: 2}\ncases:\n  - {layer: msa}\n")
    with pytest.raises(ConfigError, match="gate: field 'speed'"):
        load_suite(p)
