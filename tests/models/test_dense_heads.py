"""Dense-prediction heads: the head knob, each head over a built-here and a timm backbone, a
fixed detection count, the post-processing settings and the MACs by part in the row."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from hilobench.core import options
from hilobench.core.case import Case
from hilobench.core.errors import ConfigError
from hilobench.core.row import is_measured
from hilobench.models.dense import HEADS, build_dense
from hilobench.models.dense_count import SCRIPTED, analytic_dense, count_dense
from hilobench.report.dense_rows import dense_side_by_side
from hilobench.run.engine import build_subject, run_case, validate_case

CliRunner = Callable[[list[str]], tuple[int, str, str]]
#: Small but real: every stage map of LITv2 and the timm backbones is non-empty at 64x96.
RES = (64, 96)


def test_bad_head_is_one_line_exit_2(cli: CliRunner) -> None:
    code, out, err = cli(["model", "litv2_s", "--head", "yolo", "--res", "64", "--batch", "1"])
    assert code == 2
    line = err.strip()
    assert "\n" not in line and "'yolo'" in line
    assert all(h in line for h in ("none", *HEADS))


def test_head_knob_lists_the_heads_built_here() -> None:
    assert options.get("head").allowed() == ["none", *HEADS]


def test_head_joins_the_case_key_and_none_keeps_old_keys() -> None:
    plain = Case("model", "litv2_s", res=(800, 1280), batch=1)
    unset = Case("model", "litv2_s", res=(800, 1280), batch=1, options=tuple(
        options.given({"head": "none"}).items()))  # fmt: skip
    assert unset.key == plain.key
    keys = {plain.key}
    for head in HEADS:
        case = plain.with_(options=(("head", head),))
        assert f"head={head}" in case.label()
        keys.add(case.key)
    assert len(keys) == 1 + len(HEADS)


@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("litv2_s", "retinanet"),
        ("resnet50", "retinanet"),
        ("pvt_s", "maskrcnn"),
        ("swin_t", "maskrcnn"),
    ],
)
def test_detection_keeps_a_fixed_number_of_boxes(name: str, head: str) -> None:
    torch.manual_seed(0)
    model = build_dense(name, head, res=RES, impl="reference", detections=7, proposals=40)
    x = torch.randn(1, 3, *RES)
    with torch.inference_mode():
        out = model.eval()(x)
    assert isinstance(out, list) and len(out) == 1
    assert out[0]["boxes"].shape == (7, 4) and out[0]["scores"].shape == (7,)
    if head == "maskrcnn":
        assert out[0]["masks"].shape == (7, 1, *RES)
    if name in ("litv2_s", "pvt_s"):  # the analytic count: the backbone's, FPN, head formulas
        assert analytic_dense(model, RES) == count_dense(model, x)["macs_traced"]
    if name == "swin_t":  # and the count: NMS and RoI Align listed as not MACs, nothing unknown
        assert analytic_dense(model, RES) is None  # timm's backbone has no formula
        got = count_dense(model, x)
        assert SCRIPTED in got["macs_ignored_ops"] and got["uncounted_ops"] == []
        assert "torchvision::roi_align" in got["macs_ignored_ops"]
        assert sum(got["macs_parts"].values()) == got["macs_traced"]


@pytest.mark.parametrize("name", ["litv2_s", "swin_t"])
def test_semantic_fpn_gives_150_class_logits_at_the_input_size(name: str) -> None:
    torch.manual_seed(0)
    model = build_dense(name, "semfpn", res=RES, impl="reference").eval()
    with torch.inference_mode():
        out = model(torch.randn(1, 3, *RES))
    assert isinstance(out, torch.Tensor) and out.shape == (1, 150, *RES)


def test_detection_rows_record_their_post_processing() -> None:
    case = Case("model", "litv2_s", res=RES, batch=1, options=(("head", "maskrcnn"),))
    with torch.device("meta"):  # built, not run
        cols = build_subject(case).columns
    assert cols == {
        "head": "maskrcnn",
        "postprocess_timed": True,
        "det_score_thresh": 0.0,
        "det_nms_thresh": 0.5,
        "det_per_img": 100,
    }


def test_row_records_the_head_and_macs_by_part() -> None:
    case = Case("model", "litv2_s", res=RES, batch=1, options=(("head", "semfpn"),), budget=1)
    row = run_case(case)
    assert is_measured(row), row.get("message")
    assert row["head"] == "semfpn" and row["postprocess_timed"] is True
    assert row["det_per_img"] is None
    parts = row["macs_parts"]
    assert set(parts) == {"backbone", "neck", "head"} and min(parts.values()) > 0
    assert sum(parts.values()) == row["macs_traced"] == row["macs_analytic"]
    assert row["uncounted_ops"] == [] and "aten::upsample_bilinear2d" in row["macs_ignored_ops"]
    assert row["params"] > 0 and row["throughput_median"] > 0


def test_a_backbone_without_stages_or_training_is_refused() -> None:
    with pytest.raises(ConfigError, match="no four-stage feature backbone"):
        validate_case(Case("model", "deit_b_384", res=RES, batch=1, options=(("head", "semfpn"),)))
    with pytest.raises(ConfigError, match="inference only"):
        build_dense("litv2_s", "semfpn", res=RES, impl="reference", mode="train")


def test_report_sets_paper_ratios_beside_ours(tmp_path: Path) -> None:
    def row(name: str, head: str, window: int | None, fps: float) -> dict[str, object]:
        opts = {"head": head, **({"window": window} if window else {})}
        return dict(kind="model", name=name, status="ok", throughput_median=fps, head=head,
                    options=opts, res="800x1280", batch=1, macs_traced=2e11,
                    macs_parts={"backbone": 1e11, "neck": 2e10, "head": 8e10})  # fmt: skip

    rows = [
        row("litv2_s", "retinanet", 2, 1.0),
        row("litv2_s", "retinanet", 4, 1.2),
        row("resnet50", "retinanet", None, 0.8),
    ]
    from hilobench.report.paper import PAPER_DIR

    table = dense_side_by_side(rows, PAPER_DIR)
    assert table is not None
    assert [(r["model"], r["window"]) for r in table] == [
        ("litv2_s", 2), ("litv2_s", 4), ("resnet50", None)
    ]  # fmt: skip
    df = {(r["model"], r["window"]): r for r in table}
    w4 = df[("litv2_s", 4)]
    assert w4["x_window2"] == pytest.approx(1.2)
    assert w4["paper_x_window2"] == pytest.approx(20.4 / 18.7)
    assert w4["x_resnet50"] == pytest.approx(1.5)
    assert df[("litv2_s", 2)]["paper_fps"] == pytest.approx(18.7)
    # for people: intervals folded into their cells, columns named for reading
    from hilobench.report.labels import for_people

    shown = for_people(dense_side_by_side(rows, PAPER_DIR))  # type: ignore[arg-type]
    assert "× window 2 (95% CI)" in shown.columns and "FPS (95% CI)" in shown.columns
    assert not any(c.endswith(("_ci_low", "_ci_high")) for c in shown.columns)
