"""Tables and plots from stored runs: what was measured, how it scales, and how it compares
with the paper.

Absolute speeds only compare within one machine, so the side-by-side with the paper uses
ratios to a reference row measured on the same machine (every attention over MSA, every
model over ResNet-50), next to the same ratios computed from the published numbers. Every
plotting function returns the series it drew (name → (x, y)), so tests check data, not pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hilobench.errors import ConfigError
from hilobench.measure.env import informational_differences, machine_class, machine_class_label
from hilobench.store import load_rows, to_markdown

Series = dict[str, tuple[list[Any], list[float]]]

PAPER_DIR = Path(__file__).resolve().parent / "data" / "paper"  # package data: ships in the wheel
#: Our attention names → rows of the paper's single-layer table.
PAPER_ATTENTIONS = {
    "msa": "MSA",
    "sra": "SRA",
    "wmsa": "Local Window",
    "swmsa": "Shifted Window",
    "hilo": "HiLo",
}
LAYER_REF = "msa"
MODEL_REF = "resnet50"
#: The paper's single-layer setting: 14x14 tokens, dim 768, 12 heads.
PAPER_LAYER = {"tokens": "14x14", "dim": 768, "heads": 12}


@dataclass
class Run:
    """One run directory: its rows and the environment they were measured in."""

    path: Path
    env: dict[str, Any]
    rows: list[dict[str, Any]]
    label: str = ""


@dataclass
class Report:
    """What :func:`build_report` wrote: the Markdown file, each figure's series, each table."""

    path: Path
    figures: dict[str, Series] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def load_runs(paths: Iterable[Path | str]) -> list[Run]:
    """Read run directories; each gets an environment label unique within the set."""
    import json

    runs = []
    for p in paths:
        p = Path(p)
        rows = load_rows(p)
        env_path = p / "env.json"
        env = json.loads(env_path.read_text()) if env_path.is_file() else {}
        runs.append(Run(p, env, rows))
    if not runs:
        raise ConfigError("no run directories given")
    # One label per machine class (dtype aside: rows keep their own dtype column), so runs
    # of one machine type share a column even when RAM bytes or the kernel build differ.
    classes = {id(r): run_class(r) for r in runs}
    shorts: dict[str, set[str]] = {}
    for r in runs:
        short = env_label(classes[id(r)])
        shorts.setdefault(short, set()).add(machine_class_label(classes[id(r)], dtype=False))
    for r in runs:
        cls = classes[id(r)]
        short = env_label(cls)
        r.label = short if len(shorts[short]) == 1 else machine_class_label(cls, dtype=False)
    return runs


def run_class(run: Run) -> dict[str, str]:
    """The machine class of a run, its threads and dtypes taken from its rows."""
    return machine_class(run.env, run.rows)


def env_label(env: dict[str, Any]) -> str:
    """Short name of the machine a run measured: the GPU, else the CPU and its threads."""
    if env.get("gpu_name"):
        return str(env["gpu_name"])
    cpu = str(env.get("cpu_model") or "unknown CPU")
    for noise in ("(R)", "(TM)", " CPU", " Processor"):
        cpu = cpu.replace(noise, "")
    threads = env.get("threads")
    return " ".join(cpu.split()) + (f" ({threads} threads)" if threads else "")


def _ok(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("status") == "ok" and r.get("throughput_median")]


def _hw(text: Any) -> tuple[int, int] | None:
    if text in (None, ""):
        return None
    parts = str(text).lower().split("x")
    try:
        return (int(parts[0]), int(parts[-1]))
    except ValueError:
        return None


def _side(res: Any) -> float:
    """Image side for plotting: N for N×N, √(H·W) otherwise."""
    hw = _hw(res) or (0, 0)
    return hw[0] if hw[0] == hw[1] else round(math.sqrt(hw[0] * hw[1]), 1)


def _subject(row: dict[str, Any]) -> str:
    return (
        str(row.get("attention") or row.get("name"))
        if row.get("kind") == "layer"
        else str(row.get("name"))
    )


def _scale(row: dict[str, Any]) -> str:
    res, tok = _hw(row.get("res")), _hw(row.get("tokens"))
    if row.get("kind") != "layer" or not res or not tok or not tok[0]:
        return ""
    return f"1/{round(res[0] / tok[0])}"


_QUALIFIERS = ("impl", "mode", "batch", "dtype", "device", "_env")


def _series_name(row: dict[str, Any], varying: set[str]) -> str:
    parts = [_subject(row)]
    if "_scale" in varying and _scale(row):
        parts.append(f"@{_scale(row)}")
    for q in _QUALIFIERS:
        if q in varying:
            v = row.get(q)
            parts.append(f"b{v}" if q == "batch" else str(v))
    return " ".join(parts)


def _varying(rows: list[dict[str, Any]]) -> set[str]:
    out = {q for q in _QUALIFIERS if len({str(r.get(q)) for r in rows}) > 1}
    if len({_scale(r) for r in rows}) > 1:
        out.add("_scale")
    return out


def series_vs_res(rows: list[dict[str, Any]], metric: str = "throughput_median") -> Series:
    """One series per attention (or model) and setting: ``metric`` against the image side.

    ``peak_mem_bytes`` is reported in MiB. Only rows that measured fine take part; a point
    lost to OOM is missing from its line (the report lists such rows separately).
    """
    ok = [r for r in _ok(rows) if r.get(metric) is not None]
    varying = _varying(ok)
    scale = 2**20 if metric == "peak_mem_bytes" else 1
    pts: dict[str, dict[float, float]] = {}
    for r in ok:
        pts.setdefault(_series_name(r, varying), {})[_side(r.get("res"))] = r[metric] / scale
    return {k: (sorted(v), [v[x] for x in sorted(v)]) for k, v in sorted(pts.items())}


def series_macs_vs_tokens(rows: list[dict[str, Any]]) -> Series:
    """Analytic MACs of each attention layer against its number of tokens (counts exist even
    where timing ran out of memory)."""
    pts: dict[str, dict[int, float]] = {}
    for r in rows:
        tok = _hw(r.get("tokens"))
        if r.get("kind") != "layer" or not tok or r.get("macs") is None:
            continue
        pts.setdefault(_subject(r), {})[tok[0] * tok[1]] = float(r["macs"])
    return {k: (sorted(v), [v[x] for x in sorted(v)]) for k, v in sorted(pts.items())}


def _context(row: dict[str, Any], *fields: str) -> tuple[Any, ...]:
    """Values of ``fields``; ``_env`` is the machine-class label :func:`build_report` tags rows
    with (untagged rows fall back to their env id)."""
    return tuple(
        str(row.get(f) if f != "_env" or "_env" in row else row.get("env_id")) for f in fields
    )


def _ratio(row: dict[str, Any], ref: dict[str, Any]) -> tuple[float, float | None, float | None]:
    """Speed of ``row`` over ``ref``: the interleaved per-round ratio when both were timed in
    one compare group, else the ratio of medians (no interval)."""
    if row.get("ratio_to_ref") is not None and row.get("ref_key") == ref.get("case_key"):
        return row["ratio_to_ref"], row.get("ratio_ci_low"), row.get("ratio_ci_high")
    return row["throughput_median"] / ref["throughput_median"], None, None


def _paper_csv(paper_dir: Path | None, name: str) -> pd.DataFrame | None:
    d = paper_dir if paper_dir is not None else PAPER_DIR
    p = Path(d) / name
    return pd.read_csv(p) if p.is_file() else None


def layer_side_by_side(
    rows: list[dict[str, Any]], paper_dir: Path | None = None
) -> pd.DataFrame | None:
    """Our single-layer rows at the paper's setting next to the paper's table, as ratios to
    MSA measured on the same machine. None when the run has no MSA row at that setting."""
    paper = _paper_csv(paper_dir, "attention_layers.csv")
    ok = [
        r
        for r in _ok(rows)
        if r.get("kind") == "layer"
        and r.get("mode") == "infer"
        and r.get("tokens") == PAPER_LAYER["tokens"]
    ]
    ctx_fields = ("impl", "batch", "dtype", "device", "_env")
    refs = {_context(r, *ctx_fields): r for r in ok if _subject(r) == LAYER_REF}
    out = []
    for r in ok:
        ref = refs.get(_context(r, *ctx_fields))
        if ref is None:
            continue
        ratio, lo, hi = _ratio(r, ref)
        opts = r.get("options") or {}
        rec: dict[str, Any] = {
            "attention": _subject(r),
            "impl": r.get("impl"),
            "dim": opts.get("dim", PAPER_LAYER["dim"]),
            "heads": opts.get("heads", PAPER_LAYER["heads"]),
            "batch": r.get("batch"),
            "params_m": _div(r.get("params"), 1e6),
            "mmacs": _div(r.get("macs"), 1e6),
            "mmacs_traced": _div(r.get("macs_traced"), 1e6),
            "img_s": r["throughput_median"],
            "x_msa": ratio,
            "x_msa_ci_low": lo,
            "x_msa_ci_high": hi,
        }
        prow = PAPER_ATTENTIONS.get(_subject(r))
        col = "gpu_img_s" if str(r.get("device", "")).startswith("cuda") else "cpu_img_s"
        if paper is not None and prow is not None and prow in set(paper["attention"]):
            p = paper.set_index("attention")
            rec.update(
                paper_name=prow,
                paper_params_m=float(p.at[prow, "params_m"]),
                paper_mmacs=float(p.at[prow, "mmacs"]),
                paper_img_s=float(p.at[prow, col]),
                paper_x_msa=float(p.at[prow, col] / p.at["MSA", col]),
            )
        out.append(rec)
    if not out:
        return None
    df = pd.DataFrame(out)
    return df.sort_values(["impl", "x_msa"], ascending=[True, False], ignore_index=True)


def _div(v: Any, d: float) -> float | None:
    return None if v is None else float(v) / d


def _display(name: str) -> str:
    try:
        from hilobench.models import get_model

        return str(get_model(name).display)
    except Exception:  # registry unavailable or unknown name: keep ours
        return name


def model_side_by_side(
    rows: list[dict[str, Any]], paper_dir: Path | None = None
) -> pd.DataFrame | None:
    """Our backbones next to the paper's ImageNet table: throughput as a ratio to ResNet-50
    on the same machine, params / MACs as counted, test and train memory in GiB."""
    paper = _paper_csv(paper_dir, "imagenet_table.csv")
    models = [r for r in rows if r.get("kind") == "model"]
    ok = _ok(models)
    ctx_fields = ("batch", "dtype", "device", "_env")
    refs = {
        _context(r, *ctx_fields): r
        for r in ok
        if r.get("name") == MODEL_REF and r.get("mode") == "infer"
    }
    train_mem = {
        (r.get("name"), r.get("res"), *_context(r, *ctx_fields)): r.get("peak_mem_bytes")
        for r in models
        if r.get("mode") == "train"
    }
    train_status = {
        (r.get("name"), r.get("res"), *_context(r, *ctx_fields)): r.get("status")
        for r in models
        if r.get("mode") == "train"
    }
    out = []
    p = paper.set_index("model") if paper is not None else None
    for r in ok:
        if r.get("mode") != "infer":
            continue
        ref = refs.get(_context(r, *ctx_fields))
        key = (r.get("name"), r.get("res"), *_context(r, *ctx_fields))
        tm = train_mem.get(key)
        ratio = _ratio(r, ref)[0] if ref is not None else None
        rec: dict[str, Any] = {
            "model": r.get("name"),
            "res": r.get("res"),
            "params_m": _div(r.get("params"), 1e6),
            "gmacs": _div(r.get("macs"), 1e9),
            "img_s": r["throughput_median"],
            "x_resnet50": ratio,
            "test_mem_gib": _div(r.get("peak_mem_bytes"), 2**30),
            "train_mem_gib": _div(tm, 2**30) if train_status.get(key) == "ok" else None,
        }
        if train_status.get(key) not in (None, "ok"):
            rec["train_mem_gib"] = train_status[key]
        disp = _display(str(r.get("name")))
        if p is not None and disp in p.index:
            ref_tp = float(p.at["ResNet-50", "throughput_img_s"])
            rec.update(
                paper_name=disp,
                paper_params_m=float(p.at[disp, "params_m"]),
                paper_gmacs=float(p.at[disp, "gmacs"]),
                paper_img_s=float(p.at[disp, "throughput_img_s"]),
                paper_x_resnet50=float(p.at[disp, "throughput_img_s"]) / ref_tp,
                paper_test_mem_gb=p.at[disp, "test_mem_gb"],
                paper_train_mem_gb=p.at[disp, "train_mem_gb"],
            )
        out.append(rec)
    return pd.DataFrame(out) if out else None


def merge_runs(runs: list[Run], metric: str = "throughput_median") -> pd.DataFrame:
    """One table across machines: a row per measured thing, a column per environment (like the
    paper's table of GPUs). Failed cells hold their status; a case measured twice on one
    machine keeps its latest successful row."""
    key_cols = ["kind", "name", "impl", "mode", "res", "tokens", "batch", "dtype"]
    cells: dict[tuple[Any, ...], dict[str, Any]] = {}
    order: list[str] = []
    for run in runs:
        if run.label not in order:
            order.append(run.label)
        for r in run.rows:
            opts = r.get("options") or {}
            extra = ",".join(f"{k}={v}" for k, v in sorted(opts.items()) if k != "tokens")
            key = tuple(str(r.get(c, "")) for c in key_cols) + (extra,)
            rec = cells.setdefault(key, {})
            value = r.get(metric) if r.get("status") == "ok" else r.get("status")
            if r.get("status") == "ok" or run.label not in rec:
                rec[run.label] = value
    data = [dict(zip([*key_cols, "options"], k, strict=True), **v) for k, v in cells.items()]
    df = pd.DataFrame(data, columns=[*key_cols, "options", *order])
    if (df["options"] == "").all():
        df = df.drop(columns=["options"])
    return df


# --------------------------------------------------------------------------- plotting


def require_matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(
            "plots need matplotlib, which is not installed; install it with "
            "pip install 'hilobench[plot]'"
        ) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_lines(
    series: Series,
    path: Path,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    loglog: bool = False,
    logy: bool = False,
) -> Series:
    """Line plot, one line per series; returns what it drew."""
    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, (x, y) in series.items():
        ax.plot(x, y, marker="o", label=name)
    if loglog:
        ax.set_xscale("log")
    if loglog or logy:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return series


def plot_bars(
    series: Series,
    path: Path,
    *,
    title: str,
    ylabel: str,
    errors: dict[str, tuple[list[float], list[float]]] | None = None,
    hline: float | None = None,
) -> Series:
    """Grouped bars: every series shares the category labels of its x; returns what it drew.
    ``errors`` maps a series to (lower, upper) bounds drawn as error bars."""
    plt = require_matplotlib()
    cats: list[Any] = []
    for x, _ in series.values():
        cats += [c for c in x if c not in cats]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(cats) + 2), 4.5))
    width = 0.8 / max(1, len(series))
    top = max((v for _, y in series.values() for v in y if v == v), default=1.0)
    for i, (name, (x, y)) in enumerate(series.items()):
        pos = [cats.index(c) + (i - (len(series) - 1) / 2) * width for c in x]
        yerr = None
        if errors and name in errors:
            lo, hi = errors[name]
            yerr = [
                [max(0.0, v - lo_) if lo_ == lo_ else 0.0 for v, lo_ in zip(y, lo, strict=True)],
                [max(0.0, hi_ - v) if hi_ == hi_ else 0.0 for v, hi_ in zip(y, hi, strict=True)],
            ]
        ax.bar(pos, y, width, label=name, yerr=yerr, capsize=3)
    if hline is not None:
        ax.axhline(hline, color="grey", lw=0.8, ls="--")
    ax.set_ylim(0, 1.6 * top)  # a very wide interval is clipped rather than flattening the bars
    ax.set_xticks(range(len(cats)))
    ax.set_xticklabels([str(c) for c in cats], rotation=30, ha="right", fontsize=8)
    ax.set(title=title, ylabel=ylabel)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return series


# --------------------------------------------------------------------------- the report


def _fmt(v: Any, spec: str = "{:.3g}") -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, float | int) and not isinstance(v, bool):
        return spec.format(v)
    return str(v)


def _md(df: pd.DataFrame, specs: dict[str, str] | None = None) -> str:
    specs = specs or {}
    view = df.copy()
    for c in view.columns:
        view[c] = [_fmt(v, specs.get(c, "{:.4g}")) for v in view[c]]
    return to_markdown(view)


def results_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The compact per-row table of a run."""
    layers = all(r.get("kind") == "layer" for r in rows)
    recs = []
    for r in rows:
        ci = ""
        if r.get("throughput_ci_low") is not None:
            ci = f"{r['throughput_ci_low']:.1f}–{r['throughput_ci_high']:.1f}"
        recs.append(
            {
                "name": r.get("name"),
                "impl": r.get("impl"),
                "mode": r.get("mode"),
                "res": r.get("res"),
                "tokens": r.get("tokens"),
                "batch": r.get("batch"),
                "params (M)": _div(r.get("params"), 1e6),
                ("MMACs" if layers else "GMACs"): _div(r.get("macs"), 1e6 if layers else 1e9),
                "img/s": r.get("throughput_median"),
                "95% CI": ci,
                "p50 ms": r.get("latency_ms_p50"),
                "CoV %": _div(r.get("cov"), 0.01),
                "mem MiB": _div(r.get("peak_mem_bytes"), 2**20),
                "status": r.get("status")
                + (" (noisy)" if r.get("noisy") and r.get("status") == "ok" else ""),
            }
        )
    df = pd.DataFrame(recs)
    if not layers or df["tokens"].eq("").all():
        df = df.drop(columns=["tokens"])
    return df


def compare_table(rows: list[dict[str, Any]]) -> pd.DataFrame | None:
    """Members of compare groups with their per-round speed ratio to the reference."""
    recs = []
    for r in rows:
        if not r.get("group"):
            continue
        recs.append(
            {
                "group": r["group"],
                "setting": f"{r.get('res')} {r.get('tokens') or ''} b{r.get('batch')} "
                f"{r.get('impl')} {r.get('mode')}".replace("  ", " "),
                "member": r.get("case_id") or r.get("name"),
                "reference": r.get("ref"),
                "x ref": r.get("ratio_to_ref"),
                "95% CI": (
                    f"{r['ratio_ci_low']:.3f}–{r['ratio_ci_high']:.3f}"
                    if r.get("ratio_ci_low") is not None
                    else ""
                ),
                "rounds": r.get("ratio_n"),
                "faster rounds %": _div(r.get("ratio_frac_faster"), 0.01),
                "status": r.get("status"),
            }
        )
    return pd.DataFrame(recs) if recs else None


def _same_class_notes(runs: list[Run]) -> list[str]:
    """Markdown lines naming what differs between runs grouped as one machine (RAM, kernel)."""
    first: dict[str, Run] = {}
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
) -> Report:
    """Write ``report.md`` and its PNG figures to ``out``; return what was written."""
    require_matplotlib()  # fail before writing anything when matplotlib is missing
    runs = load_runs(run_dirs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rep = Report(out / "report.md")
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
    md += [_md(envs), ""]
    md += _same_class_notes(runs)

    for run in runs:
        df = results_table(run.rows)
        rep.tables[f"results:{run.path.name}"] = df
        md += [f"## Results: {run.path.name} ({run.label})", "", _md(df), ""]
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
                _md(ct),
                "",
            ]

    md += _paper_section(rep, rows, out, paper_dir)
    md += _scaling_section(rep, rows, out)

    if len({run.label for run in runs}) > 1:
        merged = merge_runs(runs)
        rep.tables["merged"] = merged
        md += [
            "## Across machines",
            "",
            "Throughput (img/s) of each case on each machine; failed cells show their status.",
            "",
            _md(merged, {c: "{:.1f}" for c in merged.columns}),
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
        md += [_md(fdf), ""]
    rep.path.write_text("\n".join(md).rstrip() + "\n", encoding="utf-8")
    return rep


def _paper_section(
    rep: Report, rows: list[dict[str, Any]], out: Path, paper_dir: Path | None
) -> list[str]:
    md: list[str] = []
    layers = layer_side_by_side(rows, paper_dir)
    models = model_side_by_side(rows, paper_dir)
    if layers is None and models is None:
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
            _md(layers),
            "",
        ]
        paired = layers.dropna(subset=["paper_x_msa"]) if "paper_x_msa" in layers else None
        if paired is not None and len(paired):
            for impl, part in paired.groupby("impl", sort=True):
                name = f"paper_layers_{impl}.png"
                lo = [v if v is not None else float("nan") for v in part["x_msa_ci_low"]]
                hi = [v if v is not None else float("nan") for v in part["x_msa_ci_high"]]
                labels = list(part["attention"])
                rep.figures[name] = plot_bars(
                    {
                        "ours": (labels, [float(v) for v in part["x_msa"]]),
                        "paper": (labels, [float(v) for v in part["paper_x_msa"]]),
                    },
                    out / name,
                    title=f"Throughput relative to MSA ({impl} impl), ours vs paper",
                    ylabel="throughput / MSA throughput",
                    errors={"ours": ([float(v) for v in lo], [float(v) for v in hi])},
                    hline=1.0,
                )
                md += [f"![throughput over MSA, ours vs paper ({impl})]({name})", ""]
    if models is not None:
        rep.tables["paper_models"] = models
        md += ["### Backbones", "", _md(models), ""]
        if "paper_x_resnet50" in models:
            paired = models.dropna(subset=["paper_x_resnet50", "x_resnet50"])
            if len(paired):
                labels = list(paired["paper_name"])
                name = "paper_models.png"
                rep.figures[name] = plot_bars(
                    {
                        "ours": (labels, [float(v) for v in paired["x_resnet50"]]),
                        "paper": (labels, [float(v) for v in paired["paper_x_resnet50"]]),
                    },
                    out / name,
                    title="Throughput relative to ResNet-50, ours vs paper",
                    ylabel="throughput / ResNet-50 throughput",
                    hline=1.0,
                )
                md += [f"![throughput over ResNet-50, ours vs paper]({name})", ""]
    return md


def _scaling_section(rep: Report, rows: list[dict[str, Any]], out: Path) -> list[str]:
    md: list[str] = []
    tp = series_vs_res(rows, "throughput_median")
    mem = series_vs_res(rows, "peak_mem_bytes")
    macs = series_macs_vs_tokens(rows)
    sweep = any(len(x) > 1 for x, _ in tp.values())
    if sweep or any(len(x) > 1 for x, _ in mem.values()):
        md += ["## Throughput and memory vs resolution", ""]
        md += [
            "x is the image side (√(H·W) for non-square inputs); a single layer sees the "
            "token map shown by its scale (1/16 by default). Points lost to OOM are missing "
            "from their line and listed under Failures.",
            "",
        ]
        if sweep:
            rep.figures["throughput_vs_resolution.png"] = plot_lines(
                tp,
                out / "throughput_vs_resolution.png",
                title="Throughput vs resolution",
                xlabel="image side (pixels)",
                ylabel="images / s",
                logy=True,
            )
            md += ["![throughput vs resolution](throughput_vs_resolution.png)", ""]
        if any(len(x) > 1 for x, _ in mem.values()):
            rep.figures["memory_vs_resolution.png"] = plot_lines(
                mem,
                out / "memory_vs_resolution.png",
                title="Peak memory vs resolution",
                xlabel="image side (pixels)",
                ylabel="peak memory (MiB)",
                logy=True,
            )
            md += ["![memory vs resolution](memory_vs_resolution.png)", ""]
    elif tp:
        ok = _ok(rows)
        varying = _varying(ok)
        labels = [_series_name(r, varying) for r in ok]
        ci = (
            [float(r.get("throughput_ci_low") or "nan") for r in ok],
            [float(r.get("throughput_ci_high") or "nan") for r in ok],
        )
        rep.figures["throughput.png"] = plot_bars(
            {"throughput": (labels, [float(r["throughput_median"]) for r in ok])},
            out / "throughput.png",
            title="Throughput: median with its 95% interval",
            ylabel="images / s",
            errors={"throughput": ci},
        )
        md += ["## Throughput", "", "![throughput](throughput.png)", ""]
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
