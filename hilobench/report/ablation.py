"""The paper's ablation, generalised: each attention as LITv2-S's stage-3 attention, in the
paper's columns (params, GMACs, inference and training throughput and memory) per resolution,
with the single-layer speed ratio beside the whole-backbone one.

Both ratios are to MSA at the same resolution and on the same machine: the layer's (the same
attention alone at LITv2-S's stage-3 shape: the 1/16 map, 384 channels, 12 heads) says what the
single-layer benchmark predicts, the backbone's how much of it survives inside a network whose
other stages, FFNs and token merging cost the same for every attention. The paper's own rows
(MSA, SRA, W-MSA, T-MSA, HiLo) are marked.
"""

from __future__ import annotations

from typing import Any

from hilobench.core.frame import Frame
from hilobench.report.rows import div, ok_rows

#: The backbone of the ablation and its stage-3 shape (what the layer rows must match).
BACKBONE = "litv2_s"
STAGE3_DIM, STAGE3_HEADS, STAGE3_SCALE = 384, 12, 16
#: The attention LITv2-S has when the row names none, and the ratios' reference.
OWN, REFERENCE = "hilo", "msa"
#: The paper's ablation rows, by our names.
PAPER_ROWS = {"msa": "MSA", "sra": "SRA", "wmsa": "W-MSA", "tmsa": "T-MSA", "hilo": "HiLo"}
#: Options a swapped backbone may carry and still be the plain swap: the attention, and
#: Linformer's token count, which only sizes its projections for the stage-3 map (at 384).
SWAP_OPTIONS = frozenset({"attn", "seq_len"})
MIB = 2**20


def _attn(row: dict[str, Any]) -> str:
    return str((row.get("options") or {}).get("attn") or OWN)


def _is_backbone(row: dict[str, Any]) -> bool:
    opts = row.get("options") or {}
    swapped_only = not (set(opts) - SWAP_OPTIONS)  # alpha / window sweeps are another table
    return row.get("kind") == "model" and row.get("name") == BACKBONE and swapped_only


def _is_stage3_layer(row: dict[str, Any]) -> bool:
    opts = row.get("options") or {}
    res = str(row.get("res") or "").split("x")[0]
    tokens = str(row.get("tokens") or "").split("x")[0]
    at_stage3 = res.isdigit() and tokens.isdigit() and int(res) // STAGE3_SCALE == int(tokens)
    shape = opts.get("dim") == STAGE3_DIM and opts.get("heads") == STAGE3_HEADS
    return row.get("kind") == "layer" and shape and at_stage3 and row.get("mode") == "infer"


def _rank(row: dict[str, Any]) -> tuple[bool, int]:
    return bool(row.get("interleaved")), len(row.get("samples_s") or [])


def _keep(have: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """Whether ``new`` replaces ``have`` for one setting: a row timed interleaved with MSA
    beats one timed alone (its ratio is per round, immune to the machine's drift), then the
    one with more samples (a rerun with a larger budget), whatever order the runs come in."""
    return have is None or _rank(new) >= _rank(have)


def _ratio(
    row: dict[str, Any] | None, ref: dict[str, Any] | None, by_key: dict[str, Any], attn: Any
) -> tuple[float | None, str]:
    """Speed over MSA and its interval: the per-round ratio when the row was timed in a
    group whose reference is MSA, else the ratio of the two medians (no interval)."""
    if row is None or ref is None:
        return None, ""
    group_ref = by_key.get(str(row.get("ref_key")))
    if (
        row.get("ratio_to_ref") is not None
        and group_ref is not None
        and attn(group_ref) == REFERENCE
    ):
        lo, hi = row.get("ratio_ci_low"), row.get("ratio_ci_high")
        one_round = int(row.get("ratio_n") or 2) < 2  # its "interval" is the one ratio
        ci = f"{lo:.2f}–{hi:.2f}" if lo is not None and hi is not None and not one_round else ""
        return float(row["ratio_to_ref"]), ci
    return float(row["throughput_median"]) / float(ref["throughput_median"]), ""


def ablation_table(rows: list[dict[str, Any]]) -> Frame | None:
    """One record per (resolution, attention) with a LITv2-S inference row; None when the rows
    hold none. Training columns are empty where no training row was measured."""
    good = [r for r in ok_rows(rows) if r.get("impl", "reference") == "reference"]
    by_key = {str(r.get("case_key")): r for r in good}
    backbone: dict[tuple[str, str, str], dict[str, Any]] = {}
    layer: dict[tuple[str, str], dict[str, Any]] = {}
    for r in good:
        if _is_backbone(r):
            k = (str(r["res"]), _attn(r), str(r["mode"]))
            if _keep(backbone.get(k), r):
                backbone[k] = r
        elif _is_stage3_layer(r):
            lk = (str(r["res"]), str(r.get("attention")))
            if _keep(layer.get(lk), r):
                layer[lk] = r
    keys = sorted({(res, a) for res, a, mode in backbone if mode == "infer"})
    if not keys:
        return None
    out = []
    for res, a in keys:
        inf, train = backbone[(res, a, "infer")], backbone.get((res, a, "train"))
        x_net, ci_net = _ratio(inf, backbone.get((res, REFERENCE, "infer")), by_key, _attn)
        x_train, ci_train = _ratio(train, backbone.get((res, REFERENCE, "train")), by_key, _attn)
        x_layer, ci_layer = _ratio(
            layer.get((res, a)), layer.get((res, REFERENCE)), by_key, lambda r: r.get("attention")
        )
        out.append(
            {
                "res": res,
                "attention": a,
                "paper": PAPER_ROWS.get(a, ""),
                "batch": inf.get("batch"),
                "params_m": div(inf.get("params"), 1e6),
                "gmacs": div(inf.get("macs"), 1e9),
                "img_s": inf["throughput_median"],
                "samples": len(inf.get("samples_s") or []),
                "train_img_s": train.get("throughput_median") if train else None,
                "train_samples": len(train.get("samples_s") or []) if train else None,
                "test_mem_mib": div(inf.get("peak_mem_bytes"), MIB),
                "train_mem_mib": div(train.get("peak_mem_bytes"), MIB) if train else None,
                "backbone_x_msa": x_net,
                "backbone_ci": ci_net,
                "train_x_msa": x_train,
                "train_ci": ci_train,
                "layer_x_msa": x_layer,
                "layer_ci": ci_layer,
            }
        )
    return Frame(out)


def ablation_markdown(table: Frame) -> list[str]:
    """The section's Markdown lines: what the columns are, then the table."""
    from hilobench.report.tables import markdown_table

    shown = table.rename(
        {
            "paper": "paper row",
            "params_m": "params (M)",
            "gmacs": "GMACs",
            "img_s": "infer img/s",
            "samples": "samples",
            "train_img_s": "train img/s",
            "train_samples": "train samples",
            "test_mem_mib": "infer mem (MiB)",
            "train_mem_mib": "train mem (MiB)",
            "backbone_x_msa": "backbone × MSA",
            "backbone_ci": "95% CI",
            "train_x_msa": "train × MSA",
            "train_ci": "95% CI  ",
            "layer_x_msa": "layer × MSA",
            "layer_ci": "95% CI ",
        }
    )
    return [
        "## The paper's ablation, generalised: attentions in LITv2-S stage 3",
        "",
        "Each row is LITv2-S with that attention in stage 3 (stage 4 stays global MSA). "
        "`backbone × MSA` is its inference speed over LITv2-S with MSA in stage 3; `layer × "
        "MSA` the same ratio of the attention alone at the stage-3 shape (1/16 map, 384 "
        "channels, 12 heads). Where the members were timed interleaved (a compare group with "
        "MSA as reference) the ratio is the median of per-round ratios with its 95% interval;"
        " otherwise it is the ratio of two medians timed apart, with no interval. The closer "
        "the two, the more of a layer's speed-up survives inside the network. `train × MSA` "
        "is the same ratio for a training step (forward, backward, update). `paper row` names"
        " the paper's own ablation rows; their published figures are not stored in "
        "`hilobench/data/paper/`, so no published column is shown. An attention missing at a "
        "resolution was refused there (see the suite file for why).",
        "",
        markdown_table(shown),
        "",
    ]
