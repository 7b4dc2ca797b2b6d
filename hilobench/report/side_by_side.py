"""The report's side by side with the paper: our rows as ratios to a reference row of the same
run, next to the same ratios from the published figures, with a figure per table, and a note
naming the rows left without paper figures because their setting is not the paper's."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hilobench.core.frame import Frame
from hilobench.report.dense_rows import dense_side_by_side
from hilobench.report.labels import for_people
from hilobench.report.paper import (
    PAPER_DIR,
    absent_note,
    layer_side_by_side,
    model_side_by_side,
)
from hilobench.report.plots import plot_bars
from hilobench.report.tables import markdown_table

if TYPE_CHECKING:
    from hilobench.report.run_report import RunReport


def paper_section(
    rep: RunReport, rows: list[dict[str, Any]], out: Path, paper_dir: Path | None
) -> list[str]:
    md: list[str] = []
    layer_why: dict[str, list[str]] = {}
    model_why: dict[str, list[str]] = {}
    layers = layer_side_by_side(rows, paper_dir, layer_why)
    models = model_side_by_side(rows, paper_dir, model_why)
    dense_why: dict[str, list[str]] = {}
    dense = dense_side_by_side(rows, paper_dir or PAPER_DIR, dense_why)
    if layers is None and models is None and dense is None:
        return md
    md += [
        "## Side by side with the paper",
        "",
        "The paper measured on other hardware (single layer: RTX 3090 and an i9-10900X, "
        "PyTorch 1.8.1, no warm-up; backbones: one RTX 3090), so absolute speeds are not "
        "comparable. Both sides are therefore shown as **ratios to a reference row measured on "
        "the same run**: every attention's throughput over MSA's, every model's over "
        "ResNet-50's. Where both were timed in one compare group the ratio is the median of "
        "per-round ratios with its 95% interval; otherwise it is the ratio of medians.",
        "",
    ]
    if layers is not None:
        rep.tables["paper_layers"] = layers
        md += [
            "### Single attention layer (14x14 tokens)",
            "",
            "Paper throughput is its CPU column for a CPU run and its GPU column for a CUDA run.",
            "",
            markdown_table(for_people(layers)),
            "",
        ]
        md += _note_lines(absent_note("single-layer", layer_why))
        paired = layers.dropna("paper_x_msa") if "paper_x_msa" in layers else None
        if paired is not None and len(paired):
            keys = ["run", "impl"] if "run" in paired else ["impl"]
            for key, part in _groups(paired, keys):
                impl = key[-1]
                name = f"paper_layers_{'_'.join(_slug(k) for k in key)}.png"
                lo = [v if v is not None else float("nan") for v in part["x_msa_ci_low"]]
                hi = [v if v is not None else float("nan") for v in part["x_msa_ci_high"]]
                md += _ours_vs_paper(
                    rep, out / name, list(part["attention"]), part, "x_msa",
                    title=f"Throughput relative to MSA ({' · '.join(key)}), ours vs paper",
                    ylabel="throughput / MSA throughput",
                    alt=f"throughput over MSA, ours vs paper ({impl})",
                    errors=([float(v) for v in lo], [float(v) for v in hi]),
                )  # fmt: skip
    if models is not None:
        rep.tables["paper_models"] = models
        md += ["### Backbones", "", markdown_table(for_people(models)), ""]
        md += _note_lines(absent_note("ImageNet-table", model_why))
        if "paper_x_resnet50" in models:
            paired = models.dropna("paper_x_resnet50", "x_resnet50")
            if len(paired):
                labels = list(paired["paper_name"])
                if "run" in paired:
                    labels = [f"{n} ({r})" for n, r in zip(labels, paired["run"], strict=True)]
                md += _ours_vs_paper(
                    rep, out / "paper_models.png", labels, paired,
                    "x_resnet50", title="Throughput relative to ResNet-50, ours vs paper",
                    ylabel="throughput / ResNet-50 throughput",
                    alt="throughput over ResNet-50, ours vs paper",
                )  # fmt: skip
    if dense is not None:
        rep.tables["paper_dense"] = dense
        md += ["### Detection and segmentation (backbone + FPN + head, batch 1)", ""]
        md += [DENSE_NOTE, "", markdown_table(for_people(dense)), ""]
        md += _note_lines(absent_note("detection and segmentation", dense_why))
        paired = dense.dropna("paper_x_litv2_s", "x_litv2_s")
        if len(paired):
            labels = [f"{r['model']} w{r['window']} {r['head']}" for r in paired]
            if "run" in paired:
                labels = [f"{x} ({r})" for x, r in zip(labels, paired["run"], strict=True)]
            md += _ours_vs_paper(
                rep, out / "paper_dense.png", labels, paired, "x_litv2_s",
                title="Dense-prediction FPS relative to LITv2-S window 2, ours vs paper",
                ylabel="FPS / LITv2-S (window 2) FPS",
                alt="dense FPS over LITv2-S window 2, ours vs paper",
            )  # fmt: skip
    return md


def _groups(table: Frame, keys: list[str]) -> list[tuple[list[str], Frame]]:
    """Rows grouped by the values of ``keys`` (as text), groups in sorted order."""

    def key(r: dict[str, Any]) -> tuple[str, ...]:
        return tuple(str(r.get(k)) for k in keys)

    out = []
    for v in sorted({key(r) for r in table}):
        out.append((list(v), Frame((r for r in table if key(r) == v), table.columns)))
    return out


def _note_lines(note: str | None) -> list[str]:
    return [note, ""] if note else []


def _slug(v: Any) -> str:
    """A file-name-safe piece of a run name or impl."""
    return "".join(c if c.isalnum() or c in "-." else "-" for c in str(v))


def _ours_vs_paper(
    rep: RunReport,
    path: Path,
    labels: list[Any],
    table: Frame,
    col: str,
    *,
    title: str,
    ylabel: str,
    alt: str,
    errors: tuple[list[float], list[float]] | None = None,
) -> list[str]:
    """One figure of a ratio column ``col`` beside the paper's ``paper_<col>`` (a line at 1,
    the reference), registered in ``rep``; returns its Markdown lines."""
    rep.figures[path.name] = plot_bars(
        {
            "ours": (labels, [float(v) for v in table[col]]),
            "paper": (labels, [float(v) for v in table[f"paper_{col}"]]),
        },
        path,
        title=title,
        ylabel=ylabel,
        errors={"ours": errors} if errors else None,
        hline=1.0,
    )
    return [f"![{alt}]({path.name})", ""]


DENSE_NOTE = (
    "FPS is whole-model calls per second, post-processing included (detection: score threshold "
    "0.0, NMS 0.5, 100 boxes per image). GMACs are traced for the whole model and split into "
    "backbone, FPN neck and head. The paper (one RTX 3090) gives FPS for LITv2 only: "
    "`× window 2` is HiLo window 4 over window 2 for the same backbone and head (the median "
    "of per-round ratios with its 95% interval where the two were timed interleaved), "
    "`× LITv2-S w2` each row over LITv2-S window 2 under the same head, each with the paper's "
    "ratio beside it; `× ResNet-50` (over ResNet-50 under the same head) has no paper "
    "counterpart. A row of one sample has no interval: read its ratios as indications."
)
