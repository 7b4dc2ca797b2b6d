"""Column names for people: the paper side-by-side tables as a reader sees them in
``report.md`` (``× MSA (95% CI)``, not ``x_msa_ci_low``). The tables keep their field
names (``RunReport.tables``, anything a program reads); only the Markdown shows these."""

from __future__ import annotations

from typing import Any

from hilobench.core import numfmt as nf
from hilobench.core.frame import Frame

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
    # the dense-prediction table
    "head": "head",
    "window": "HiLo window",
    "gmacs_backbone": "GMACs backbone",
    "gmacs_neck": "GMACs neck",
    "gmacs_head": "GMACs head",
    "fps": "FPS (95% CI)",
    "n_samples": "samples",
    "mem_mib": "mem (MiB)",
    "p50_ms": "p50 ms",
    "x_window2": "× window 2 (95% CI)",
    "paper_x_window2": "paper: × window 2",
    "x_litv2_s": "× LITv2-S w2",
    "paper_x_litv2_s": "paper: × LITv2-S w2",
    "paper_fps": "paper: FPS",
}
#: value column → its interval's columns and the column of its sample count (None: the table
#: holds none), folded into one cell for reading
INTERVALS: dict[str, tuple[str, str, str | None]] = {
    "x_msa": ("x_msa_ci_low", "x_msa_ci_high", None),
    "x_window2": ("x_window2_ci_low", "x_window2_ci_high", None),
    "fps": ("fps_ci_low", "fps_ci_high", "n_samples"),
}


def _with_ci(v: Any, lo: Any, hi: Any, n: Any = None) -> str:
    """``1.23 (1.10–1.31)``, digits as the interval supports (``n=3 · …`` when too few samples
    made it); the value alone where no interval was measured, or where it is a point (one
    sample; a row against itself)."""
    text = nf.measured(v, lo, hi, n=n)
    if text and not nf.missing(lo) and not nf.missing(hi) and lo != hi:
        text += f" ({nf.interval(lo, hi, n)})"
    return text


def for_people(df: Frame) -> Frame:
    """``df`` (a side-by-side table) with its interval folded into the value's cell and its
    columns renamed for reading; "95% CI" in a header only when every interval is one."""
    view = df
    headers = dict(HEADERS)
    for col, (low, high, count) in INTERVALS.items():
        if {col, low, high} <= set(view.columns):
            ns = list(view[count]) if count in view.columns else [None] * len(view)
            folded = [
                _with_ci(v, lo, hi, n)
                for v, lo, hi, n in zip(view[col], view[low], view[high], ns, strict=True)
            ]
            view = view.with_column(col, folded, at=view.columns.index(col)).drop(low, high)
            if not nf.interval_header([n for n in ns if not nf.missing(n)]).startswith("95%"):
                headers[col] = headers[col].replace("95% CI", "interval")
    return view.rename(headers)
