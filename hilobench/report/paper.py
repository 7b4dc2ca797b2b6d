"""Our rows next to the paper's published tables, as ratios to a reference row.

Absolute speeds only compare within one machine, so the side-by-side uses ratios to a reference
row measured on the same machine (every attention over MSA, every model over ResNet-50), next
to the same ratios computed from the published numbers in the package data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hilobench.frame import Frame, read_csv
from hilobench.report.rows import div, ok_rows, subject
from hilobench.row import MEASURED

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
#: The paper's single-layer setting: 14x14 tokens, dim 768, 12 heads.
PAPER_LAYER = {"tokens": "14x14", "dim": 768, "heads": 12}


def _context(row: dict[str, Any], *fields: str) -> tuple[Any, ...]:
    """Values of ``fields``; ``_env`` is the machine-class label the report tags rows with
    (untagged rows fall back to their env id)."""
    return tuple(
        str(row.get(f) if f != "_env" or "_env" in row else row.get("env_id")) for f in fields
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


def layer_side_by_side(rows: list[dict[str, Any]], paper_dir: Path | None = None) -> Frame | None:
    """Our single-layer rows at the paper's setting next to the paper's table, as ratios to
    MSA measured on the same machine. None when the run has no MSA row at that setting."""
    paper = _paper_csv(paper_dir, "attention_layers.csv", "attention")
    ok = [
        r
        for r in ok_rows(rows)
        if r.get("kind") == "layer"
        and r.get("mode") == "infer"
        and r.get("tokens") == PAPER_LAYER["tokens"]
    ]
    ctx_fields = ("impl", "batch", "dtype", "device", "_env")
    refs = {_context(r, *ctx_fields): r for r in ok if subject(r) == LAYER_REF}
    out = []
    for r in ok:
        ref = refs.get(_context(r, *ctx_fields))
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
        prow = PAPER_ATTENTIONS.get(subject(r))
        col = "gpu_img_s" if str(r.get("device", "")).startswith("cuda") else "cpu_img_s"
        if paper is not None and prow is not None and prow in paper:
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
    out.sort(key=lambda d: -d["x_msa"])  # by impl, then the fastest first
    out.sort(key=lambda d: str(d["impl"]))
    return Frame(out)


def _display(name: str) -> str:
    """The paper's name of one of our models (its table's row), else ``name``."""
    try:
        from hilobench.models import get_model  # imports torch (~1.5 s): only model rows need it

        return str(get_model(name).display)
    except Exception:  # registry unavailable or unknown name: keep ours
        return name


def model_side_by_side(rows: list[dict[str, Any]], paper_dir: Path | None = None) -> Frame | None:
    """Our backbones next to the paper's ImageNet table: throughput as a ratio to ResNet-50
    on the same machine, params / MACs as counted, test and train memory in GiB."""
    p = _paper_csv(paper_dir, "imagenet_table.csv", "model")
    # a backbone under a dense head is not a row of the ImageNet table (report.dense has it)
    models = [
        r for r in rows if r.get("kind") == "model" and not (r.get("options") or {}).get("head")
    ]
    ok = ok_rows(models)
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
        disp = _display(str(r.get("name")))
        if p is not None and disp in p:
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
