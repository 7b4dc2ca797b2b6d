"""``report.md`` and its figures: the environments, each run's results, the side-by-side with
the paper, scaling plots, the cross-machine table and the failures, in that order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hilobench.fileio import make_dir, write_text_atomic
from hilobench.measure.env import informational_differences, machine_class_label
from hilobench.report.ablation import ablation_markdown, ablation_table
from hilobench.report.dense import dense_side_by_side
from hilobench.report.labels import for_people
from hilobench.report.merge import merge_runs
from hilobench.report.paper import PAPER_DIR, layer_side_by_side, model_side_by_side
from hilobench.report.plots import plot_bars, plot_lines, require_matplotlib
from hilobench.report.rows import ok_rows
from hilobench.report.runs import ReportedRun, load_runs, run_class
from hilobench.report.series import (
    Series,
    series_latency_throughput,
    series_macs_vs_tokens,
    series_name,
    series_vs_res,
    varying_fields,
)
from hilobench.report.tables import compare_table, markdown_table, results_table


@dataclass
class RunReport:
    """What :func:`build_report` wrote: the Markdown file, each figure's series, each table."""

    path: Path
    figures: dict[str, Series] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def _same_class_notes(runs: list[ReportedRun]) -> list[str]:
    """Markdown lines naming what differs between runs grouped as one machine (RAM, kernel)."""
    first: dict[str, ReportedRun] = {}
    lines = []
    for run in runs:
        ref = first.setdefault(run.label, run)
        diffs = informational_differences(ref.env, run.env) if ref is not run else []
        if diffs:
            lines.append(
                f"- `{run.path.name}` vs `{ref.path.name}` (one machine class, shown as "
                f"{run.label}): {'; '.join(diffs)}"
            )
    return [*lines, ""] if lines else []


def build_report(
    run_dirs: Iterable[Path | str], out: Path | str, *, paper_dir: Path | None = None
) -> RunReport:
    """Write ``report.md`` and its PNG figures to ``out``; return what was written."""
    require_matplotlib()  # fail before writing anything when matplotlib is missing
    runs = load_runs(run_dirs)
    out = make_dir(out)
    rep = RunReport(out / "report.md")
    rows = [dict(r, _env=run.label) for run in runs for r in run.rows]
    md: list[str] = ["# hilobench report", ""]
    md += [
        "Throughput is images per second at the batch shown: the median of timed samples after "
        "a warm-up, with a 95% distribution-free confidence interval; CoV is the samples' "
        "coefficient of variation (rows above 10% are flagged noisy). MACs are "
        "multiply-accumulates (the paper's 'FLOPs'). Memory is peak tensor bytes (CPU) or the "
        "CUDA allocator's peak (GPU).",
        "",
        "## Environments",
        "",
    ]
    envs = pd.DataFrame(
        [
            {
                "run": run.path.name,
                "environment": run.label,
                "machine class": machine_class_label(run_class(run)),
                "torch": run.env.get("torch"),
                "threads": run.env.get("threads"),
                "commit": str(run.env.get("git_commit") or "")[:10],
                "rows": len(run.rows),
                "ok": sum(r.get("status") == "ok" for r in run.rows),
                "failed": sum(r.get("status") != "ok" for r in run.rows),
            }
            for run in runs
        ]
    )
    rep.tables["environments"] = envs
    md += [markdown_table(envs), ""]
    md += _same_class_notes(runs)

    for run in runs:
        df = results_table(run.rows)
        rep.tables[f"results:{run.path.name}"] = df
        md += [f"## Results: {run.path.name} ({run.label})", "", markdown_table(df), ""]
        ct = compare_table(run.rows)
        if ct is not None:
            rep.tables[f"compare:{run.path.name}"] = ct
            md += [
                "Members of a compare group were timed in one process, round by round with the "
                "order rotated each round, so drift hits all alike; `x ref` is the median of "
                "the per-round speed ratios to the reference, with its 95% interval. When the "
                "machine's speed changes during a run (a high CoV), each member's own median can "
                "land in a different state, so compare members by these ratios, not by img/s.",
                "",
                markdown_table(ct),
                "",
            ]

    md += _paper_section(rep, rows, out, paper_dir)
    ablation = ablation_table(rows)
    if ablation is not None:
        rep.tables["ablation"] = ablation
        md += ablation_markdown(ablation)
    md += _scaling_section(rep, rows, out)

    if len({run.label for run in runs}) > 1:
        merged = merge_runs(runs)
        rep.tables["merged"] = merged
        md += [
            "## Across machines",
            "",
            "Throughput (img/s) of each case on each machine; failed cells show their status.",
            "",
            markdown_table(merged, {c: "{:.1f}" for c in merged.columns}),
            "",
        ]
    failed = [r for r in rows if r.get("status") != "ok"]
    if failed:
        md += ["## Failures", "", "Cases that produced no timing, and why.", ""]
        fdf = pd.DataFrame(
            [
                {
                    "name": r.get("name"),
                    "res": r.get("res"),
                    "tokens": r.get("tokens"),
                    "batch": r.get("batch"),
                    "mode": r.get("mode"),
                    "status": r.get("status"),
                    "message": str(r.get("message", ""))[:120],
                }
                for r in failed
            ]
        )
        rep.tables["failures"] = fdf
        md += [markdown_table(fdf), ""]
    write_text_atomic(rep.path, "\n".join(md).rstrip() + "\n")
    return rep


def _paper_section(
    rep: RunReport, rows: list[dict[str, Any]], out: Path, paper_dir: Path | None
) -> list[str]:
    md: list[str] = []
    layers = layer_side_by_side(rows, paper_dir)
    models = model_side_by_side(rows, paper_dir)
    dense = dense_side_by_side(rows, paper_dir or PAPER_DIR)
    if layers is None and models is None and dense is None:
        return md
    md += [
        "## Side by side with the paper",
        "",
        "The paper measured on other hardware (single layer: RTX 3090 and an i9-10900X, "
        "PyTorch 1.8.1, no warm-up; backbones: one RTX 3090), so absolute speeds are not "
        "comparable. Both sides are therefore shown as **ratios to a reference row measured on "
        "the same machine**: every attention's throughput over MSA's, every model's over "
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
        paired = layers.dropna(subset=["paper_x_msa"]) if "paper_x_msa" in layers else None
        if paired is not None and len(paired):
            for impl, part in paired.groupby("impl", sort=True):
                name = f"paper_layers_{impl}.png"
                lo = [v if v is not None else float("nan") for v in part["x_msa_ci_low"]]
                hi = [v if v is not None else float("nan") for v in part["x_msa_ci_high"]]
                md += _ours_vs_paper(
                    rep, out / name, list(part["attention"]), part, "x_msa",
                    title=f"Throughput relative to MSA ({impl} impl), ours vs paper",
                    ylabel="throughput / MSA throughput",
                    alt=f"throughput over MSA, ours vs paper ({impl})",
                    errors=([float(v) for v in lo], [float(v) for v in hi]),
                )  # fmt: skip
    if models is not None:
        rep.tables["paper_models"] = models
        md += ["### Backbones", "", markdown_table(for_people(models)), ""]
        if "paper_x_resnet50" in models:
            paired = models.dropna(subset=["paper_x_resnet50", "x_resnet50"])
            if len(paired):
                md += _ours_vs_paper(
                    rep, out / "paper_models.png", list(paired["paper_name"]), paired,
                    "x_resnet50", title="Throughput relative to ResNet-50, ours vs paper",
                    ylabel="throughput / ResNet-50 throughput",
                    alt="throughput over ResNet-50, ours vs paper",
                )  # fmt: skip
    if dense is not None:
        rep.tables["paper_dense"] = dense
        md += ["### Detection and segmentation (backbone + FPN + head, batch 1)", ""]
        md += [DENSE_NOTE, "", markdown_table(for_people(dense)), ""]
        paired = dense.dropna(subset=["paper_x_litv2_s", "x_litv2_s"])
        if len(paired):
            labels = [f"{m} w{w} {h}" for m, w, h in paired[["model", "window", "head"]].values]
            md += _ours_vs_paper(
                rep, out / "paper_dense.png", labels, paired, "x_litv2_s",
                title="Dense-prediction FPS relative to LITv2-S window 2, ours vs paper",
                ylabel="FPS / LITv2-S (window 2) FPS",
                alt="dense FPS over LITv2-S window 2, ours vs paper",
            )  # fmt: skip
    return md


def _ours_vs_paper(
    rep: RunReport,
    path: Path,
    labels: list[Any],
    table: pd.DataFrame,
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


#: What each kind of row is called in figure titles and file names.
KIND_NOUNS = {"layer": ("attention layers", "layers"), "model": ("backbones", "backbones")}

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


def _scaling_section(rep: RunReport, rows: list[dict[str, Any]], out: Path) -> list[str]:
    """Scaling and batch figures, one set per kind: a layer's and a backbone's throughput
    differ by orders of magnitude and answer different questions, so they never share axes.
    With one kind the files keep their plain names; with both, each gets the kind's suffix."""
    kinds = [k for k in KIND_NOUNS if any(r.get("kind") == k for r in rows)]
    md: list[str] = []
    for kind in kinds:
        noun, slug = KIND_NOUNS[kind]
        part = [r for r in rows if r.get("kind") == kind]
        suffix = f"_{slug}" if len(kinds) > 1 else ""
        md += _scaling_for(rep, part, out, suffix, f" ({noun})" if len(kinds) > 1 else "")
        md += _batch_section(rep, part, out, suffix, noun)
    macs = series_macs_vs_tokens(rows)
    return md + _macs_section(rep, macs, out)


def _batch_section(
    rep: RunReport, rows: list[dict[str, Any]], out: Path, suffix: str, noun: str
) -> list[str]:
    """Latency against throughput across batch sizes: one line per subject, a point per
    batch; a larger batch buys throughput with latency, and the knee shows where it stops."""
    lt = series_latency_throughput(rows)
    if not lt:
        return []
    name = f"latency_vs_throughput{suffix}.png"
    rep.figures[name] = plot_lines(
        {k: (x, y) for k, (x, y, _) in lt.items()},
        out / name,
        title=f"Latency vs throughput across batch sizes ({noun})",
        xlabel="throughput (images / s)",
        ylabel="latency (ms per batch, median)",
        point_labels={k: [f"b{b}" for b in batches] for k, (_, _, batches) in lt.items()},
    )
    return [
        f"## Latency vs throughput across batch sizes ({noun})",
        "",
        "Each line is one subject measured at several batch sizes (points labelled b1, b8, …): "
        "x is its median throughput, y the median time of one call on the whole batch.",
        "",
        f"![latency vs throughput]({name})",
        "",
    ]


def _scaling_for(
    rep: RunReport, rows: list[dict[str, Any]], out: Path, suffix: str, noun: str
) -> list[str]:
    md: list[str] = []
    tp = series_vs_res(rows, "throughput_median")
    mem = series_vs_res(rows, "peak_mem_bytes")
    sweep = any(len(x) > 1 for x, _ in tp.values())
    if sweep or any(len(x) > 1 for x, _ in mem.values()):
        md += [f"## Throughput and memory vs resolution{noun}", ""]
        md += [
            "x is the image side (√(H·W) for non-square inputs); a single layer sees the "
            "token map shown by its scale (1/16 by default). Points lost to OOM are missing "
            "from their line and listed under Failures.",
            "",
        ]
        if sweep:
            name = f"throughput_vs_resolution{suffix}.png"
            rep.figures[name] = plot_lines(
                tp,
                out / name,
                title=f"Throughput vs resolution{noun}",
                xlabel="image side (pixels)",
                ylabel="images / s",
                logy=True,
            )
            md += [f"![throughput vs resolution]({name})", ""]
        if any(len(x) > 1 for x, _ in mem.values()):
            name = f"memory_vs_resolution{suffix}.png"
            rep.figures[name] = plot_lines(
                mem,
                out / name,
                title=f"Peak memory vs resolution{noun}",
                xlabel="image side (pixels)",
                ylabel="peak memory (MiB)",
                logy=True,
            )
            md += [f"![memory vs resolution]({name})", ""]
    elif tp:
        ok = ok_rows(rows)
        varying = varying_fields(ok)
        labels = [series_name(r, varying) for r in ok]
        ci = (
            [float(r.get("throughput_ci_low") or "nan") for r in ok],
            [float(r.get("throughput_ci_high") or "nan") for r in ok],
        )
        name = f"throughput{suffix}.png"
        rep.figures[name] = plot_bars(
            {"throughput": (labels, [float(r["throughput_median"]) for r in ok])},
            out / name,
            title=f"Throughput: median with its 95% interval{noun}",
            ylabel="images / s",
            errors={"throughput": ci},
        )
        md += [f"## Throughput{noun}", "", f"![throughput]({name})", ""]
    return md


def _macs_section(rep: RunReport, macs: Series, out: Path) -> list[str]:
    md: list[str] = []
    if any(len(x) > 1 for x, _ in macs.values()):
        rep.figures["macs_vs_tokens.png"] = plot_lines(
            macs,
            out / "macs_vs_tokens.png",
            title="MACs vs tokens (one layer, batch 1)",
            xlabel="tokens (H·W of the map)",
            ylabel="MACs",
            loglog=True,
        )
        md += [
            "## MACs vs tokens",
            "",
            "Analytic multiply-accumulates of one layer on log-log axes: global attention "
            "grows with the square of the token count, windowed and pooled attention about "
            "linearly.",
            "",
            "![MACs vs tokens](macs_vs_tokens.png)",
            "",
        ]
    return md
