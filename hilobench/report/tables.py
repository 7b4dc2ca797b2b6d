"""Rows → the report's tables: the compact per-row results, the compare groups' ratios, and
Markdown with numbers formatted for reading."""

from __future__ import annotations

from typing import Any

from hilobench.frame import Frame, missing
from hilobench.report.rows import div
from hilobench.store import to_markdown


def fmt_cell(v: Any, spec: str = "{:.3g}") -> str:
    """A number through ``spec``; None and NaN as an empty cell; anything else as text."""
    if missing(v):
        return ""
    if isinstance(v, float | int) and not isinstance(v, bool):
        return spec.format(v)
    return str(v)


def markdown_table(df: Frame, specs: dict[str, str] | None = None) -> str:
    """``df`` as Markdown; ``specs`` maps a column to its number format (default 4 digits)."""
    specs = specs or {}
    recs = ({c: fmt_cell(v, specs.get(c, "{:.4g}")) for c, v in r.items()} for r in df)
    return to_markdown(Frame(recs, df.columns))


def results_table(rows: list[dict[str, Any]]) -> Frame:
    """The compact per-row table of a run."""
    layers = all(r.get("kind") == "layer" for r in rows)
    recs = []
    for r in rows:
        ci = ""
        if r.get("throughput_ci_low") is not None:
            ci = f"{r['throughput_ci_low']:.1f}–{r['throughput_ci_high']:.1f}"
        status = str(r.get("status") or "")
        recs.append(
            {
                "name": r.get("name"),
                "impl": r.get("impl"),
                "mode": r.get("mode"),
                "res": r.get("res"),
                "tokens": r.get("tokens"),
                "batch": r.get("batch"),
                "params (M)": div(r.get("params"), 1e6),
                ("MMACs" if layers else "GMACs"): div(r.get("macs"), 1e6 if layers else 1e9),
                "img/s": r.get("throughput_median"),
                "95% CI": ci,
                "p50 ms": r.get("latency_ms_p50"),
                "CoV %": div(r.get("cov"), 0.01),
                "mem MiB": div(r.get("peak_mem_bytes"), 2**20),
                "status": status + (" (noisy)" if r.get("noisy") and status == "ok" else ""),
            }
        )
    df = Frame(recs)
    searched = [r.get("max_batch") for r in rows]
    if any(v is not None for v in searched):  # --max-batch rows: the answer and its limit
        df = df.with_column("max batch", searched, at=len(df.columns) - 1)
        limits = [div(r.get("mem_limit_bytes"), 2**20) for r in rows]
        df = df.with_column("limit MiB", limits, at=len(df.columns) - 1)
    if "tokens" in df and (not layers or all(v == "" for v in df["tokens"])):
        df = df.drop("tokens")
    return df


def compare_table(rows: list[dict[str, Any]]) -> Frame | None:
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
                "faster rounds %": div(r.get("ratio_frac_faster"), 0.01),
                "status": r.get("status"),
            }
        )
    return Frame(recs) if recs else None
