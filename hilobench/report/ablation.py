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

import pandas as pd

from hilobench.report.rows import div, ok_rows

#: The backbone of the ablation and its stage-3 shape (what the layer rows must match).
BACKBONE = "litv2_s"
STAGE3_DIM, STAGE3_HEADS, STAGE3_SCALE = 384, 12, 16
#: The attention LITv2-S has when the row names none, and the ratios' reference.
OWN, REFERENCE = "hilo", "msa"
#: The paper's ablation rows, by our names.
PAPER_ROWS = {"msa": "MSA", "sra": "SRA", "wmsa": "W-MSA", "tmsa": "T-MSA", "hilo": "HiLo"}
MIB = 2**20


def _attn(row: dict[str, Any]) -> str:
    return str((row.get("options") or {}).get("attn") or OWN)


def _is_backbone(row: dict[str, Any]) -> bool:
    opts = row.get("options") or {}
    swapped_only = not (set(opts) - {"attn"})  # alpha / window sweeps are another table
    return row.get("kind") == "model" and row.get("name") == BACKBONE and swapped_only


def _is_stage3_layer(row: dict[str, Any]) -> bool:
    opts = row.get("options") or {}
    res = str(row.get("res") or "").split("x")[0]
    tokens = str(row.get("tokens") or "").split("x")[0]
    at_stage3 = res.isdigit() and tokens.isdigit() and int(res) // STAGE3_SCALE == int(tokens)
    shape = opts.get("dim") == STAGE3_DIM and opts.get("heads") == STAGE3_HEADS
    return row.get("kind") == "layer" and shape and at_stage3 and row.get("mode") == "infer"


def ablation_table(rows: list[dict[str, Any]]) -> pd.DataFrame | None:
    """One record per (resolution, attention) with a LITv2-S inference row; None when the rows
    hold none. Training columns are empty where no training row was measured."""
    good = [r for r in ok_rows(rows) if r.get("impl", "reference") == "reference"]
    backbone: dict[tuple[str, str, str], dict[str, Any]] = {}
    layer: dict[tuple[str, str], float] = {}
    for r in good:
        if _is_backbone(r):
            backbone[(str(r["res"]), _attn(r), str(r["mode"]))] = r
        elif _is_stage3_layer(r):
            layer[(str(r["res"]), str(r.get("attention")))] = float(r["throughput_median"])
    keys = sorted({(res, a) for res, a, mode in backbone if mode == "infer"})
    if not keys:
        return None
    out = []
    for res, a in keys:
        inf, train = backbone[(res, a, "infer")], backbone.get((res, a, "train"))
        ref = backbone.get((res, REFERENCE, "infer"))
        ref_layer = layer.get((res, REFERENCE))
        own_layer = layer.get((res, a))
        out.append(
            {
                "res": res,
                "attention": a,
                "paper": PAPER_ROWS.get(a, ""),
                "batch": inf.get("batch"),
                "params_m": div(inf.get("params"), 1e6),
                "gmacs": div(inf.get("macs"), 1e9),
                "img_s": inf["throughput_median"],
                "ci_low": inf.get("throughput_ci_low"),
                "ci_high": inf.get("throughput_ci_high"),
                "train_img_s": train.get("throughput_median") if train else None,
                "test_mem_mib": div(inf.get("peak_mem_bytes"), MIB),
                "train_mem_mib": div(train.get("peak_mem_bytes"), MIB) if train else None,
                "backbone_x_msa": inf["throughput_median"] / ref["throughput_median"]
                if ref
                else None,
                "layer_x_msa": own_layer / ref_layer if own_layer and ref_layer else None,
            }
        )
    return pd.DataFrame(out)


def ablation_markdown(table: pd.DataFrame) -> list[str]:
    """The section's Markdown lines: what the columns are, then the table."""
    from hilobench.report.tables import markdown_table

    shown = table.rename(
        columns={
            "paper": "paper row",
            "params_m": "params (M)",
            "gmacs": "GMACs",
            "img_s": "infer img/s",
            "ci_low": "CI low",
            "ci_high": "CI high",
            "train_img_s": "train img/s",
            "test_mem_mib": "infer mem (MiB)",
            "train_mem_mib": "train mem (MiB)",
            "backbone_x_msa": "backbone × MSA",
            "layer_x_msa": "layer × MSA",
        }
    )
    return [
        "## The paper's ablation, generalised: attentions in LITv2-S stage 3",
        "",
        "Each row is LITv2-S with that attention in stage 3 (stage 4 stays global MSA). "
        "`backbone × MSA` is its inference speed over LITv2-S with MSA in stage 3; `layer × "
        "MSA` the same ratio of the attention alone at the stage-3 shape (1/16 map, 384 "
        "channels, 12 heads), measured in the same run. The closer the two, the more of a "
        "layer's speed-up survives inside the network. `paper row` names the paper's own "
        "ablation rows; their published figures (one GPU, batch 64) are not stored in "
        "`hilobench/data/paper/`, so no published column is shown. An attention missing at a "
        "resolution was refused there (see the suite file for why).",
        "",
        markdown_table(shown),
        "",
    ]
