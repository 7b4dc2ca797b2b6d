"""Our rows next to the paper's published tables, as ratios to a reference row.

Absolute speeds only compare within one machine, so the side-by-side uses ratios to a reference
row measured on the same machine (every attention over MSA, every model over ResNet-50), next
to the same ratios computed from the published numbers in the package data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hilobench.core.frame import Frame, read_csv
from hilobench.core.row import MEASURED
from hilobench.report.rows import div, ok_rows, subject

#: The paper's published figures (package data: ships in the wheel).
PAPER_DIR = Path(__file__).resolve().parent.parent / "data" / "paper"
#: Our attention names → rows of the paper's single-layer table.
PAPER_ATTENTIONS = {
    "msa": "MSA",
    "sra": "SRA",
    "wmsa": "Local Window",
    "swmsa": "Shifted Window",
    "hilo": "HiLo",
    "cswin": "Cross Window",
    "dat": "DAT",
    "performer": "Performer",
    "linformer": "Linformer",
    "focal": "Focal",
    "xca": "XCA",
    "van": "VAN",
    "quadtree": "QuadTree",
    "hornet": "HorNet",
}
LAYER_REF = "msa"
MODEL_REF = "resnet50"
#: The paper's single-layer setting: 14x14 tokens, dim 768, 12 heads, batch 64.
PAPER_LAYER = {"tokens": "14x14", "dim": 768, "heads": 12, "batch": 64}
#: The paper's ImageNet table: batch 64, each model at its own resolution.
PAPER_MODEL_BATCH = 64


def _context(row: dict[str, Any], *fields: str) -> tuple[Any, ...]:
    """Values of ``fields``; ``_run`` is the run the report tags rows with (untagged rows fall
    back to their env id), so a ratio never divides by another run's reference."""
    return tuple(
        str(row.get(f) if f != "_run" or "_run" in row else row.get("env_id")) for f in fields
    )


def layer_setting_differences(row: dict[str, Any]) -> list[str]:
    """How a single-layer row's setting differs from the paper's (``dim 64 ≠ 768``); empty
    when it is the paper's, and only then do the paper's figures belong beside it."""
    opts = row.get("options") or {}
    have = {
        "tokens": row.get("tokens"),
        "dim": opts.get("dim", PAPER_LAYER["dim"]),
        "heads": opts.get("heads", PAPER_LAYER["heads"]),
        "batch": row.get("batch"),
    }
    return [f"{k} {have[k]} ≠ {v}" for k, v in PAPER_LAYER.items() if str(have[k]) != str(v)]


def model_setting_differences(row: dict[str, Any]) -> list[str]:
    """How a backbone row's setting differs from the paper's table (batch 64, the model's own
    resolution); empty when it matches."""
    out = []
    if str(row.get("batch")) != str(PAPER_MODEL_BATCH):
        out.append(f"batch {row.get('batch')} ≠ {PAPER_MODEL_BATCH}")
    native = _native_res(str(row.get("name")))
    if native is not None and str(row.get("res")) not in (str(native), f"{native}x{native}"):
        out.append(f"res {row.get('res')} ≠ {native}")
    return out


def absent_note(what: str, why: dict[str, list[str]]) -> str | None:
    """One line saying which rows got no paper columns and why (None when all did)."""
    if not why:
        return None
    reasons = sorted({d for ds in why.values() for d in ds})
    names = ", ".join(sorted(why)[:8]) + (" …" if len(why) > 8 else "")
    return (
        f"The paper's {what} figures are left out for {len(why)} row(s) ({names}): measured at "
        f"another setting than the paper's ({'; '.join(reasons)}), so they would not compare."
    )


def _ratio(row: dict[str, Any], ref: dict[str, Any]) -> tuple[float, float | None, float | None]:
    """Speed of ``row`` over ``ref``: the interleaved per-round ratio when both were timed in
    one compare group, else the ratio of medians (no interval)."""
    if row.get("ratio_to_ref") is not None and row.get("ref_key") == ref.get("case_key"):
        return row["ratio_to_ref"], row.get("ratio_ci_low"), row.get("ratio_ci_high")
    return row["throughput_median"] / ref["throughput_median"], None, None


def _paper_csv(paper_dir: Path | None, name: str, key: str) -> dict[Any, dict[str, Any]] | None:
    """The paper's table ``name``, a row per value of its ``key`` column."""
    d = paper_dir if paper_dir is not None else PAPER_DIR
    p = Path(d) / name
    return read_csv(p).by(key) if p.is_file() else None


def layer_side_by_side(
    rows: list[dict[str, Any]],
    paper_dir: Path | None = None,
    notes: dict[str, list[str]] | None = None,
) -> Frame | None:
    """Our single-layer rows at the paper's token map next to the paper's table, as ratios to
    MSA measured in the same run. None when no run has an MSA row at that map. Rows at
    another dim, heads or batch than the paper's get no paper columns; ``notes`` collects
    their subjects and why (for :func:`absent_note`)."""
    paper = _paper_csv(paper_dir, "attention_layers.csv", "attention")
    ok = [
        r
        for r in ok_rows(rows)
        if r.get("kind") == "layer"
        and r.get("mode") == "infer"
        and r.get("tokens") == PAPER_LAYER["tokens"]
    ]

    def ctx(r: dict[str, Any]) -> tuple[Any, ...]:  # the reference: same run, same layer size
        opts = r.get("options") or {}
        size = (
            str(opts.get("dim", PAPER_LAYER["dim"])),
            str(opts.get("heads", PAPER_LAYER["heads"])),
        )
        return (*_context(r, "impl", "batch", "dtype", "device", "_run"), *size)

    refs = {ctx(r): r for r in ok if subject(r) == LAYER_REF}
    several = len({r.get("_run") for r in ok}) > 1
    out = []
    for r in ok:
        ref = refs.get(ctx(r))
        if ref is None:
            continue
        ratio, lo, hi = _ratio(r, ref)
        opts = r.get("options") or {}
        rec: dict[str, Any] = {
            "attention": subject(r),
            "impl": r.get("impl"),
            "dim": opts.get("dim", PAPER_LAYER["dim"]),
            "heads": opts.get("heads", PAPER_LAYER["heads"]),
            "batch": r.get("batch"),
            "params_m": div(r.get("params"), 1e6),
            "mmacs": div(r.get("macs"), 1e6),
            "mmacs_traced": div(r.get("macs_traced"), 1e6),
            "img_s": r["throughput_median"],
            "x_msa": ratio,
            "x_msa_ci_low": lo,
            "x_msa_ci_high": hi,
        }
        if several:
            rec = {"run": r.get("_run"), **rec}
        prow = PAPER_ATTENTIONS.get(subject(r))
        col = "gpu_img_s" if str(r.get("device", "")).startswith("cuda") else "cpu_img_s"
        differs = layer_setting_differences(r)
        if differs and notes is not None:
            notes.setdefault(subject(r), differs)
        if paper is not None and prow is not None and prow in paper and not differs:
            p = paper[prow]
            rec.update(
                paper_name=prow,
                paper_params_m=float(p["params_m"]),
                paper_mmacs=float(p["mmacs"]),
                paper_img_s=float(p[col]),
                paper_x_msa=float(p[col] / paper["MSA"][col]),
            )
        out.append(rec)
    if not out:
        return None
    out.sort(key=lambda d: -d["x_msa"])  # by run and impl, then the fastest first
    out.sort(key=lambda d: (str(d.get("run", "")), str(d["impl"])))
    return Frame(out)


def _display(name: str) -> str:
    """The paper's name of one of our models (its table's row), else ``name``."""
    try:
        from hilobench.models import get_model  # imports torch (~1.5 s): only model rows need it

        return str(get_model(name).display)
    except Exception:  # registry unavailable or unknown name: keep ours
        return name


def _native_res(name: str) -> int | None:
    """The resolution a model is built for (its row of the paper's table), None if unknown."""
    try:
        from hilobench.models import get_model  # imports torch (~1.5 s): only model rows need it

        return int(get_model(name).default_res)
    except Exception:  # registry unavailable or unknown name: not judged
        return None


def model_side_by_side(
    rows: list[dict[str, Any]],
    paper_dir: Path | None = None,
    notes: dict[str, list[str]] | None = None,
) -> Frame | None:
    """Our backbones next to the paper's ImageNet table: throughput as a ratio to ResNet-50
    in the same run, params / MACs as counted, test and train memory in GiB. Rows at another
    batch or resolution than the paper's get no paper columns; ``notes`` collects why."""
    p = _paper_csv(paper_dir, "imagenet_table.csv", "model")
    # a backbone under a dense head is not a row of the ImageNet table (report.dense has it)
    models = [
        r for r in rows if r.get("kind") == "model" and not (r.get("options") or {}).get("head")
    ]
    ok = ok_rows(models)
    ctx_fields = ("batch", "dtype", "device", "_run")
    several = len({r.get("_run") for r in ok}) > 1
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
            "params_m": div(r.get("params"), 1e6),
            "gmacs": div(r.get("macs"), 1e9),
            "img_s": r["throughput_median"],
            "x_resnet50": ratio,
            "test_mem_gib": div(r.get("peak_mem_bytes"), 2**30),
            "train_mem_gib": div(tm, 2**30) if train_status.get(key) in MEASURED else None,
        }
        if train_status.get(key) not in (None, *MEASURED):
            rec["train_mem_gib"] = train_status[key]
        if several:
            rec = {"run": r.get("_run"), **rec}
        disp = _display(str(r.get("name")))
        differs = model_setting_differences(r) if p is not None and disp in p else []
        if differs and notes is not None:
            notes.setdefault(str(r.get("name")), differs)
        if p is not None and disp in p and not differs:
            ref_tp = float(p["ResNet-50"]["throughput_img_s"])
            rec.update(
                paper_name=disp,
                paper_params_m=float(p[disp]["params_m"]),
                paper_gmacs=float(p[disp]["gmacs"]),
                paper_img_s=float(p[disp]["throughput_img_s"]),
                paper_x_resnet50=float(p[disp]["throughput_img_s"]) / ref_tp,
                paper_test_mem_gb=p[disp]["test_mem_gb"],
                paper_train_mem_gb=p[disp]["train_mem_gb"],
            )
        out.append(rec)
    return Frame(out) if out else None
