"""Dense-prediction rows (a backbone under a detection or segmentation head) next to the
paper's detection / segmentation FPS, as ratios measured on one machine.

The paper gives FPS for LITv2-S/M/B with HiLo window 2 and 4 (``dense_fps.csv``) on one RTX
3090, so two ratios can be set beside ours: window 4 over window 2 for the same backbone and
head, and, within one head, each backbone over LITv2-S window 2. The paper has no FPS for the
ResNet, Swin or PVT detectors, so each row's speed over ResNet-50 under the same head is ours
alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hilobench.core.frame import Frame, read_csv
from hilobench.report.rows import div, hw_or_none, ok_rows

#: Our model names → the paper's (the rows of ``dense_fps.csv``).
PAPER_BACKBONES = {"litv2_s": "LITv2-S", "litv2_m": "LITv2-M", "litv2_b": "LITv2-B"}
#: HiLo's window in LITv2 when the row does not set one.
DEFAULT_WINDOW = 2
#: The reference rows of the ratios: LITv2-S at window 2 (both sides), ResNet-50 (ours only).
PAPER_REF = ("litv2_s", DEFAULT_WINDOW)
OURS_REF = "resnet50"
#: The paper's setting per head: batch 1 at this input (H, W); only rows measured so get the
#: paper's figures beside them.
PAPER_DENSE_RES = {"retinanet": (800, 1280), "maskrcnn": (800, 1280), "semfpn": (512, 512)}


def dense_setting_differences(row: dict[str, Any]) -> list[str]:
    """How a dense row's setting differs from the paper's for its head; empty when it is it."""
    want = PAPER_DENSE_RES.get(head_of(row))
    out = [] if str(row.get("batch")) == "1" else [f"batch {row.get('batch')} ≠ 1"]
    if want is not None and hw_or_none(row.get("res")) != want:
        out.append(f"res {row.get('res')} ≠ {want[0]}x{want[1]} for {head_of(row)}")
    return out


def head_of(row: dict[str, Any]) -> str:
    """The row's dense head ("" for a backbone alone)."""
    head = row.get("head") or (row.get("options") or {}).get("head") or ""
    return "" if head == "none" else str(head)


def _window(row: dict[str, Any]) -> int | None:
    w = (row.get("options") or {}).get("window")
    if w is not None:
        return int(w)
    return DEFAULT_WINDOW if row.get("name") in PAPER_BACKBONES else None


def _paper(paper_dir: Path) -> dict[tuple[str, int, str], float]:
    """(paper backbone, window, head) → the paper's FPS."""
    path = paper_dir / "dense_fps.csv"
    if not path.is_file():
        return {}
    out = {}
    for rec in read_csv(path):
        for head in ("retinanet", "maskrcnn", "semfpn"):
            v = rec.get(f"{head}_fps")
            if v is not None:  # empty: the paper has no such row
                out[(str(rec["backbone"]), int(rec["window"]), head)] = float(v)
    return out


def dense_side_by_side(
    rows: list[dict[str, Any]], paper_dir: Path, notes: dict[str, list[str]] | None = None
) -> Frame | None:
    """One record per dense row: counts, FPS with its interval, and the ratios beside the
    paper's (only for rows at the paper's setting: ``notes`` collects the others and why).
    None when the rows hold no dense measurement."""
    dense = [r for r in ok_rows(rows) if r.get("kind") == "model" and head_of(r)]
    if not dense:
        return None
    paper = _paper(paper_dir)

    def ctx(r: dict[str, Any]) -> tuple[Any, ...]:
        run = r.get("_run", r.get("env_id"))  # within one run: never another run's reference
        return (*(str(r.get(f)) for f in ("res", "batch", "dtype", "device", "impl")), str(run))

    by = {(r.get("name"), _window(r), head_of(r), ctx(r)): r for r in dense}
    fps = {k: r["throughput_median"] for k, r in by.items()}

    def over_window2(r: dict[str, Any], key: tuple[Any, ...]) -> tuple[Any, Any, Any]:
        """Window 4 over window 2: the per-round ratio when the two were timed interleaved
        against each other, else the ratio of medians (no interval)."""
        ref = by.get(key)
        if ref is None or ref is r:
            return None, None, None
        if r.get("ratio_to_ref") is not None and r.get("ref_key") == ref.get("case_key"):
            return r["ratio_to_ref"], r.get("ratio_ci_low"), r.get("ratio_ci_high")
        return r["throughput_median"] / ref["throughput_median"], None, None

    out = []
    for r in dense:
        name, head, win, c = str(r.get("name")), head_of(r), _window(r), ctx(r)
        parts = r.get("macs_parts") or {}
        pname = PAPER_BACKBONES.get(name)
        mine = r["throughput_median"]
        xw2 = over_window2(r, (name, DEFAULT_WINDOW, head, c)) if win else (None,) * 3
        s2 = fps.get((*PAPER_REF, head, c))
        rn = fps.get((OURS_REF, None, head, c))
        differs = dense_setting_differences(r)
        if differs and notes is not None and (pname or head in PAPER_DENSE_RES):
            notes.setdefault(f"{name} {head}", differs)
        p = paper.get((pname, win, head)) if pname and win and not differs else None
        p_w2 = paper.get((pname, DEFAULT_WINDOW, head)) if pname and not differs else None
        p_s2 = None if differs else paper.get((PAPER_BACKBONES[PAPER_REF[0]], PAPER_REF[1], head))
        out.append(
            {
                "model": name,
                "head": head,
                "window": win,
                "res": r.get("res"),
                "params_m": div(r.get("params"), 1e6),
                "gmacs": div(r.get("macs_traced"), 1e9),
                "gmacs_backbone": div(parts.get("backbone"), 1e9),
                "gmacs_neck": div(parts.get("neck"), 1e9),
                "gmacs_head": div(parts.get("head"), 1e9),
                "fps": mine,
                "fps_ci_low": r.get("throughput_ci_low"),
                "fps_ci_high": r.get("throughput_ci_high"),
                "n_samples": r.get("n_samples"),
                "mem_mib": div(r.get("peak_mem_bytes"), 2**20),
                "p50_ms": r.get("latency_ms_p50"),
                "x_window2": xw2[0],
                "x_window2_ci_low": xw2[1],
                "x_window2_ci_high": xw2[2],
                "paper_x_window2": p / p_w2 if p and p_w2 and win != DEFAULT_WINDOW else None,
                "x_litv2_s": mine / s2 if s2 else None,
                "paper_x_litv2_s": p / p_s2 if p and p_s2 else None,
                "x_resnet50": mine / rn if rn else None,
                "paper_fps": p,
            }
        )
    several = len({r.get("_run") for r in dense}) > 1
    if several:  # a column per run's rows: every ratio above is within its own run
        out = [{"run": r.get("_run"), **rec} for r, rec in zip(dense, out, strict=True)]
    # by run, head, model, then window (a row without a window first)
    out.sort(
        key=lambda d: (
            str(d.get("run", "")),
            d["head"],
            d["model"],
            d["window"] is not None,
            d["window"] or 0,
        )
    )
    return Frame(out)
