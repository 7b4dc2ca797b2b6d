"""The ablation table: LITv2-S per stage-3 attention, its ratio beside the single layer's."""

from __future__ import annotations

from typing import Any

import pytest

from hilobench.report.ablation import ablation_markdown, ablation_table


def backbone(attn: str | None, img_s: float, mode: str = "infer", **kw: Any) -> dict[str, Any]:
    opts = {"attn": attn} if attn else {}
    return {"kind": "model", "name": "litv2_s", "res": "224x224", "mode": mode, "batch": 1,
            "impl": "reference", "status": "ok", "throughput_median": img_s,
            "throughput_ci_low": img_s * 0.9, "throughput_ci_high": img_s * 1.1,
            "params": 28_000_000, "macs": 4_000_000_000, "peak_mem_bytes": 2**27,
            "options": {**opts, **kw}}  # fmt: skip


def layer(attn: str, img_s: float, dim: int = 384, tokens: str = "14x14") -> dict[str, Any]:
    return {"kind": "layer", "name": attn, "attention": attn, "res": "224x224", "mode": "infer",
            "impl": "reference", "status": "ok", "tokens": tokens, "throughput_median": img_s,
            "options": {"dim": dim, "heads": 12, "tokens": tokens}}  # fmt: skip


def test_backbone_and_layer_ratios_to_msa_side_by_side() -> None:
    rows = [
        backbone("msa", 10.0),
        backbone("msa", 2.0, mode="train"),
        backbone(None, 12.0),  # LITv2-S as built: HiLo
        backbone("cswin", 8.0),
        backbone(None, 99.0, alpha=0.5),  # the alpha sweep: not this table
        layer("msa", 100.0),
        layer("hilo", 200.0),
        layer("cswin", 50.0),
        layer("cswin", 999.0, dim=768),  # the paper's single-layer shape: not stage 3
        {**backbone("xca", 0.0), "status": "error"},
    ]
    t = ablation_table(rows)
    assert t is not None
    by = t.by("attention")
    assert t["attention"] == ["cswin", "hilo", "msa"]
    assert by["hilo"]["backbone_x_msa"] == pytest.approx(1.2)
    assert by["hilo"]["layer_x_msa"] == pytest.approx(2.0)
    assert by["cswin"]["layer_x_msa"] == pytest.approx(0.5)
    assert by["msa"]["train_img_s"] == 2.0 and by["msa"]["train_mem_mib"] == 128.0
    assert by["cswin"]["train_img_s"] is None
    assert (by["hilo"]["paper"], by["cswin"]["paper"]) == ("HiLo", "")
    text = "\n".join(ablation_markdown(t))
    assert "backbone × MSA" in text and "layer × MSA" in text


def test_no_backbone_rows_no_table() -> None:
    assert ablation_table([layer("msa", 1.0)]) is None


def test_interleaved_rows_give_per_round_ratios_and_win_over_rows_timed_alone() -> None:
    msa = {**backbone("msa", 10.0), "case_key": "k_msa", "interleaved": True, "ratio_to_ref": 1.0}
    ratio = {"ratio_to_ref": 1.3, "ratio_ci_low": 1.2, "ratio_ci_high": 1.4, "ref_key": "k_msa"}
    hilo = {**backbone("hilo", 11.0), "case_key": "k_hilo", "interleaved": True, **ratio}
    alone = {**backbone("hilo", 50.0), "case_key": "k_alone"}  # timed apart: loses
    t = ablation_table([msa, alone, hilo])
    assert t is not None
    row = t.by("attention")["hilo"]
    assert row["backbone_x_msa"] == 1.3 and row["backbone_ci"] == "1.20–1.40"
    assert row["img_s"] == 11.0


def test_training_rows_timed_interleaved_give_their_own_ratio_to_msa() -> None:
    def train(attn: str, img_s: float, **kw: Any) -> dict[str, Any]:
        row = backbone(attn, img_s, mode="train", **kw.pop("opts", {}))
        return {**row, "case_key": f"t_{attn}", "interleaved": True, **kw}

    ref = {"ref_key": "t_msa"}
    rows = [
        backbone("msa", 10.0),
        backbone("sra", 12.0),
        backbone("hilo", 9.0),
        backbone("xca", 9.0),
        train("msa", 2.0, ratio_to_ref=1.0, samples_s=[0.5, 0.5, 0.5], **ref),  # 2 img/s
        train("sra", 2.6, ratio_to_ref=1.25, ratio_ci_low=1.1, ratio_ci_high=1.4, **ref),
        train("hilo", 3.0),  # no group: the ratio of the two medians, no interval
        train("xca", 4.0, ratio_to_ref=2.0, ratio_ci_low=2.0, ratio_ci_high=2.0, ratio_n=1, **ref),
    ]
    t = ablation_table(rows)
    assert t is not None
    by = t.by("attention")
    assert by["sra"]["train_x_msa"] == 1.25 and by["sra"]["train_ci"] == "1.10–1.40"
    assert by["hilo"]["train_x_msa"] == pytest.approx(1.5) and by["hilo"]["train_ci"] == ""
    assert by["xca"]["train_x_msa"] == 2.0 and by["xca"]["train_ci"] == ""  # one round
    assert by["msa"]["train_samples"] == 3
    assert by["sra"]["backbone_x_msa"] == pytest.approx(1.2)
    assert "train × MSA" in "\n".join(ablation_markdown(t))


def test_linformer_sized_for_the_map_is_the_plain_swap_other_knobs_are_not() -> None:
    rows = [
        backbone("msa", 10.0),
        backbone("linformer", 5.0, seq_len=576),  # its projections fitted to 24x24
        backbone("hilo", 30.0, window=4),  # the window sweep: another table
    ]
    t = ablation_table(rows)
    assert t is not None
    assert t["attention"] == ["linformer", "msa"]
    assert t.by("attention")["linformer"]["backbone_x_msa"] == pytest.approx(0.5)


def test_of_two_interleaved_rows_of_one_setting_the_one_with_more_rounds_wins() -> None:
    def hilo(n: int, ratio: float) -> dict[str, Any]:
        extra = {"interleaved": True, "ratio_to_ref": ratio, "ratio_n": n, "ref_key": "k_msa"}
        return {**backbone("hilo", 1.0, mode="train"), "samples_s": [1.0] * n, **extra}

    msa = {**backbone("msa", 1.0, mode="train"), "case_key": "k_msa", "interleaved": True}
    for rows in ([hilo(4, 1.1), hilo(1, 1.9)], [hilo(1, 1.9), hilo(4, 1.1)]):
        t = ablation_table([backbone("msa", 1.0), backbone("hilo", 1.0), msa, *rows])
        assert t is not None
        assert t.by("attention")["hilo"]["train_x_msa"] == 1.1
