"""Column names for people: the paper side-by-side tables as a reader sees them in
``report.md`` (``× MSA (95% CI)``, not ``x_msa_ci_low``). The data frames keep their field
names (``RunReport.tables``, anything a program reads); only the Markdown shows these."""

from __future__ import annotations

from typing import Any

import pandas as pd

from hilobench.report.tables import fmt_cell

#: field name → header, in the order the report shows them; fields not named keep their name.
HEADERS = {
    "attention": "attention",
    "model": "model",
    "impl": "impl",
    "res": "res",
    "dim": "dim",
    "heads": "heads",
    "batch": "batch",
    "params_m": "params (M)",
    "mmacs": "MMACs",
    "mmacs_traced": "MMACs (traced)",
    "gmacs": "GMACs",
    "img_s": "img/s",
    "x_msa": "× MSA (95% CI)",
    "x_resnet50": "× ResNet-50",
    "test_mem_gib": "test mem (GiB)",
    "train_mem_gib": "train mem (GiB)",
    "paper_name": "paper: name",
    "paper_params_m": "paper: params (M)",
    "paper_mmacs": "paper: MMACs",
    "paper_gmacs": "paper: GMACs",
    "paper_img_s": "paper: img/s",
    "paper_x_msa": "paper: × MSA",
    "paper_x_resnet50": "paper: × ResNet-50",
    # the paper prints GB; its memory figures are kept in its own unit
    "paper_test_mem_gb": "paper: test mem (GB)",
    "paper_train_mem_gb": "paper: train mem (GB)",
}


def _ratio_with_ci(v: Any, lo: Any, hi: Any) -> str:
    """``1.23 (1.10–1.31)``; the ratio alone where no interval was measured."""
    text = fmt_cell(v, "{:.2f}")
    if text and fmt_cell(lo) and fmt_cell(hi):
        text += f" ({lo:.2f}–{hi:.2f})"
    return text


def for_people(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (a side-by-side table) with its interval folded into the ratio's cell and its
    columns renamed for reading."""
    view = df.copy()
    if {"x_msa", "x_msa_ci_low", "x_msa_ci_high"} <= set(view.columns):
        view["x_msa"] = [
            _ratio_with_ci(v, lo, hi)
            for v, lo, hi in zip(
                view["x_msa"], view["x_msa_ci_low"], view["x_msa_ci_high"], strict=True
            )
        ]
        view = view.drop(columns=["x_msa_ci_low", "x_msa_ci_high"])
    return view.rename(columns=HEADERS)
