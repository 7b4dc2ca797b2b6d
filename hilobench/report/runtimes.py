"""The report's runtime section: each case's speed under every backend it ran under, the ratio
to eager, and the paper's CPU claims (HiLo ≥ 1.4× SRA, ≥ 1.6× W-MSA) judged per runtime.

Only rows of one run are set side by side (ratios across runs would mix machine states). The
claims' ratios come with a 95% percentile-bootstrap interval from the two rows' timed samples;
a claim holds where the interval's low end reaches the paper's ratio, fails where its high end
stays below it, and is unclear otherwise.
"""

from __future__ import annotations

import json
from typing import Any

from hilobench.core import numfmt as nf
from hilobench.core.row import is_measured
from hilobench.gate.speed import bootstrap_ratio_ci
from hilobench.measure.rowstats import shown

#: The paper's CPU claims of HiLo: (other layer, the ratio it claims HiLo is faster by).
CPU_CLAIMS = (("sra", 1.4), ("wmsa", 1.6))


def _setting(r: dict[str, Any]) -> tuple[Any, ...]:
    """What a case is apart from its backend."""
    opts = json.dumps(r.get("options") or {}, sort_keys=True)
    return tuple(r.get(k) for k in ("kind", "name", "impl", "mode", "res", "tokens", "batch",
                                    "device", "dtype", "threads")) + (opts,)  # fmt: skip


def _backend(r: dict[str, Any]) -> str:
    return str(r.get("backend") or ("compile" if r.get("compile") else "eager"))


def _ok(r: dict[str, Any]) -> bool:
    """A row with a measured speed (``ok``, or ``few-samples``: measured, not certain)."""
    return is_measured(r) and bool(r.get("throughput_median"))


def _md(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]


def _to_eager(r: dict[str, Any], eager: dict[str, Any] | None) -> str:
    """A runtime row's speed over eager's: the per-round ratio with its interval where the two
    were timed interleaved (a compare group across backends), else the ratio of the medians of
    rows timed apart (marked ``~``: it carries the machine's drift between them)."""
    if eager is None or not (_ok(r) and _ok(eager)):
        return ""
    lo, hi = r.get("ratio_ci_low"), r.get("ratio_ci_high")
    if r.get("ratio_to_ref") is not None and r.get("ref_key") == eager.get("case_key"):
        ci = nf.fixed_range(lo, hi)
        return nf.fixed(r["ratio_to_ref"]) + (f" ({ci})" if ci else "")
    ratio = nf.fixed(r["throughput_median"] / eager["throughput_median"])
    return "~" + ratio if ratio else nf.EMPTY


def runtime_table(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown lines: img/s per backend and × eager per case; [] without non-eager rows."""
    rows = [shown(r) for r in rows]
    backends = list(dict.fromkeys(_backend(r) for r in rows))
    if backends == ["eager"] or not backends:
        return []
    by: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(_setting(r), {})[_backend(r)] = r
    header = ["name", "res", "tokens", "batch"]
    for b in backends:
        header += [f"{b} img/s"] + ([f"{b} × eager"] if b != "eager" else [])
    body = []
    for cells in by.values():
        first = next(iter(cells.values()))
        line = [str(first.get(k) or "") for k in ("name", "res", "tokens", "batch")]
        eager = cells.get("eager")
        for b in backends:
            r = cells.get(b) or {}
            line.append(nf.short(r["throughput_median"]) if _ok(r) else r.get("status", ""))
            if b != "eager":
                line.append(_to_eager(r, eager))
        body.append(line)
    return _md(header, body)


def claims_table(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown lines: HiLo's throughput over SRA's and W-MSA's per backend and setting, with
    the interval and the verdict against the paper's CPU claim; [] without such pairs."""
    rows = [shown(r) for r in rows]
    layers: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for r in rows:
        if r.get("kind") == "layer" and str(r.get("device", "")).startswith("cpu") and _ok(r):
            key = (_backend(r), r.get("res"), r.get("tokens"), r.get("batch"), r.get("dtype"))
            layers.setdefault(key, {})[str(r.get("name"))] = r
    body = []
    for (backend, res, tokens, batch, dtype), named in layers.items():
        hilo = named.get("hilo")
        for other, claimed in CPU_CLAIMS:
            o = named.get(other)
            if hilo is None or o is None:
                continue
            ratio = hilo["throughput_median"] / o["throughput_median"]
            hs, os_ = hilo.get("samples_s") or [], o.get("samples_s") or []
            lo = hi = None
            if len(hs) >= 2 and len(os_) >= 2:  # time ratio other/hilo = throughput hilo/other
                lo, hi = bootstrap_ratio_ci(os_, hs)
            verdict = "unclear (too few samples)" if lo is None or hi is None else (
                "holds" if lo >= claimed else "fails" if hi < claimed else "unclear")  # fmt: skip
            body.append([backend, str(res), str(tokens), str(batch), dtype or "",
                         f"hilo / {other} ≥ {claimed}", nf.fixed(ratio), nf.fixed_range(lo, hi),
                         verdict])  # fmt: skip
    if not body:
        return []
    header = ["backend", "res", "tokens", "batch", "dtype", "paper's claim", "ratio", "95% CI",
              "verdict"]  # fmt: skip
    return _md(header, body)


def runtime_section(rows: list[dict[str, Any]]) -> list[str]:
    """The report's "Runtimes" section, [] where every row ran eager."""
    table = runtime_table(rows)
    if not table:
        return []
    md = ["### Runtimes", "",
          "Throughput (img/s) of each case under each backend of the run and its ratio to eager: "
          "the median per-round ratio with its 95% interval where the backends were timed "
          "interleaved (a compare group `across: backend`), else `~` and the ratio of medians "
          "of rows timed apart "
          "(export and compile time are apart, in each row's `prepare_s`; every runtime row's "
          "output matched eager's within its dtype's tolerance, or its status says mismatch).",
          "", *table, ""]  # fmt: skip
    claims = claims_table(rows)
    if claims:
        md += ["The paper's CPU claims per runtime (ratio of medians, 95% bootstrap interval "
               "from the timed samples):", "", *claims, ""]  # fmt: skip
    return md
