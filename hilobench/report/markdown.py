"""``report.md`` and its figures: the environments, each run's results, the side-by-side with
the paper, scaling plots, the cross-machine table and the failures, in that order."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hilobench.core.fileio import make_dir, write_text_atomic
from hilobench.core.frame import Frame
from hilobench.core.row import is_measured
from hilobench.measure.env import informational_differences, machine_class_label
from hilobench.report.ablation import ablation_markdown, ablation_table
from hilobench.report.merge import merge_runs
from hilobench.report.plots import plot_bars, plot_lines, require_matplotlib
from hilobench.report.rows import ok_rows
from hilobench.report.run_report import RunReport
from hilobench.report.run_rows import ReportedRun, load_runs, run_class
from hilobench.report.runtimes import runtime_section
from hilobench.report.series import (
    Series,
    series_latency_throughput,
    series_macs_vs_tokens,
    series_name,
    series_vs_res,
    varying_fields,
)
from hilobench.report.side_by_side import paper_section
from hilobench.report.tables import compare_table, markdown_table, results_table
from hilobench.run.rounds import PARTIAL


def _same_class_notes(runs: list[ReportedRun]) -> list[str]:
    """Markdown lines naming what differs between runs of one machine class (RAM, kernel)."""
    first: dict[str, ReportedRun] = {}
    lines = []
    for run in runs:
        ref = first.setdefault(run.machine, run)
        diffs = informational_differences(ref.env, run.env) if ref is not run else []
        if diffs:
            lines.append(
                f"- `{run.name}` vs `{ref.name}` (one machine class, {run.machine}): "
                f"{'; '.join(diffs)}"
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
    # each row knows its run: series, reference rows and ratios stay within one run
    rows = [dict(r, _run=run.name) for run in runs for r in run.rows]
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
    envs = Frame(
        [
            {
                "run": run.name,
                "environment": run.machine,
                "machine class": machine_class_label(run_class(run)),
                "torch": run.env.get("torch"),
                "threads": run.env.get("threads"),
                "commit": str(run.env.get("git_commit") or "")[:10],
                "rows": len(run.rows),
                "ok": sum(r.get("status") == "ok" for r in run.rows),
                "few-samples": sum(r.get("status") == "few-samples" for r in run.rows),
                "failed": sum(not is_measured(r) for r in run.rows),
            }
            for run in runs
        ]
    )
    rep.tables["environments"] = envs
    md += [markdown_table(envs), ""]
    md += _same_class_notes(runs)

    for run in runs:
        df = results_table(run.rows)
        rep.tables[f"results:{run.name}"] = df
        md += [f"## Results: {run.name} ({run.machine})", "", markdown_table(df), ""]
        ct = compare_table(run.rows)
        if ct is not None:
            rep.tables[f"compare:{run.name}"] = ct
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

        md += runtime_section(run.rows)  # backends side by side: ratios within one run

    # the paper measured eager PyTorch: compiled and runtime rows have their own section above
    eager = [r for r in rows if r.get("backend", "eager") == "eager" and not r.get("compile")]
    md += paper_section(rep, eager, out, paper_dir)
    ablation = ablation_table(rows)
    if ablation is not None:
        rep.tables["ablation"] = ablation
        md += ablation_markdown(ablation)
    md += _scaling_section(rep, rows, out)

    if len(runs) > 1:
        merged = merge_runs(runs)
        rep.tables["merged"] = merged
        distinct = len({run.machine for run in runs}) == len(runs)
        md += [
            "## Across machines" if distinct else "## Across runs",
            "",
            "Throughput (img/s) of each case in each run (a column per run, named by its "
            "machine, and by the run too where several share one); failed cells show their "
            "status.",
            "",
            markdown_table(merged),
            "",
        ]
    partial = [r for r in rows if r.get("status") == PARTIAL]
    if partial:
        md += [
            f"{len(partial)} row(s) are `partial`: a compare group stopped after some rounds "
            "(their count is the row's sample count). They are left out of the figures; "
            "`hilobench suite run SUITE --resume --out RUN` completes the group.",
            "",
        ]
    failed = [r for r in rows if not is_measured(r) and r.get("status") != PARTIAL]
    if failed:
        md += ["## Failures", "", "Cases that produced no timing, and why.", ""]
        fdf = Frame(
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


#: What each kind of row is called in figure titles and file names.
KIND_NOUNS = {"layer": ("attention layers", "layers"), "model": ("backbones", "backbones")}


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
        for series, stem, title, ylabel in (
            (tp, "throughput", "Throughput", "images / s"),
            (mem, "memory", "Peak memory", "peak memory (MiB)"),
        ):
            if not any(len(x) > 1 for x, _ in series.values()):
                continue  # a single resolution: no line to draw
            name = f"{stem}_vs_resolution{suffix}.png"
            rep.figures[name] = plot_lines(
                series,
                out / name,
                title=f"{title} vs resolution{noun}",
                xlabel="image side (pixels)",
                ylabel=ylabel,
                logy=True,
            )
            md += [f"![{stem} vs resolution]({name})", ""]
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
