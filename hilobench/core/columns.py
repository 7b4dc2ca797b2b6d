"""The columns of the tables made from rows, as plain text: what the terminal table, the
Markdown views (``--format md``, ``results.md``) and the report's per-run table show, cell by
cell, every number written by :mod:`hilobench.core.numfmt`. No rich and no pandas here: the
terminal's style is :mod:`hilobench.core.terminal`'s, the raw-field tables
:mod:`hilobench.store.writer`'s.

The statistics of a row (throughput, its interval, latencies, n, CoV, noisy) are derived from
its samples by :func:`hilobench.measure.rowstats.derive`; core lies below measure and cannot
import it, so every function here that reads them takes it as ``stats`` from the view that
calls (a required argument: no view can forget it and show stale stored columns)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hilobench.core import numfmt as nf
from hilobench.core.row import is_measured

#: A row's statistics as views show them (:func:`hilobench.measure.rowstats.derive`).
Stats = Callable[[Mapping[str, Any]], Mapping[str, Any]]


def _text(field: str) -> Callable[[Mapping[str, Any], bool], str]:
    return lambda r, layers: str(r.get(field, "") or "")


def _res(r: Mapping[str, Any], layers: bool) -> str:
    """The image resolution; empty where ``--tokens`` set the token map instead."""
    return "" if (r.get("options") or {}).get("tokens") else str(r.get("res", "") or "")


def _macs(field: str) -> Callable[[Mapping[str, Any], bool], str]:
    return lambda r, layers: nf.count(r.get(field), 1e6 if layers else 1e9)


def _latency(field: str) -> Callable[[Mapping[str, Any], bool], str]:
    """A latency with the digits the throughput interval supports (its inverse, relatively)."""

    def cell(r: Mapping[str, Any], layers: bool) -> str:
        v, tp = r.get(field), r.get("throughput_median")
        lo, hi = r.get("throughput_ci_low"), r.get("throughput_ci_high")
        n = r.get("n_samples")
        if nf.missing(v) or not tp or not lo or not hi:
            return nf.measured(v, n=n)
        return nf.measured(v, v * tp / hi, v * tp / lo, n=n)

    return cell


def _status(r: Mapping[str, Any], layers: bool) -> str:
    status = nf.status(r)
    if is_measured({"status": status.split(" ")[0]}) or not r.get("message"):
        return status
    return f"{status} {str(r.get('message', ''))[:40]}"


@dataclass(frozen=True)
class Column:
    """One column of the tables made from rows: its ``--columns`` name, its header (``{macs}``
    is MMACs for layers, GMACs for backbones; ``{ci}`` "95% CI" unless a row has too few
    samples for one), its cell (plain text, from :mod:`hilobench.core.numfmt`), and whether it holds
    text (which may wrap) or numbers (which never wrap and are never cut)."""

    name: str
    header: str
    cell: Callable[[Mapping[str, Any], bool], str]
    text: bool = False
    #: a setting: when every row has the same value, the default table names it in the title
    setting: bool = False
    #: the row field a setting is read from, where it is not ``name``
    key: str = ""


def _bound(r: Mapping[str, Any], layers: bool) -> str:
    """``memory 0.92/0.10/0.61``: the bound, then the busy, compute and memory shares."""
    if not r.get("bound"):
        return nf.EMPTY
    shares = [r.get(k) for k in ("bound_busy", "bound_compute", "bound_memory")]
    return str(r["bound"]) + " " + "/".join(nf.fixed(v) for v in shares)


#: Every column of the terminal table, in display order (``--wide`` shows them all).
COLUMNS: tuple[Column, ...] = (
    Column("name", "name", _text("name"), text=True),
    Column("impl", "impl", _text("impl"), text=True, setting=True),
    Column("mode", "mode", _text("mode"), text=True, setting=True),
    Column("res", "res", _res, setting=True),
    Column("tokens", "tokens", _text("tokens"), setting=True),
    Column("batch", "batch", lambda r, _: nf.integer(r.get("batch")), setting=True),
    Column("dtype", "dtype", _text("dtype"), text=True, setting=True),
    Column("backend", "backend", _text("backend"), text=True, setting=True),
    Column("precision", "precision", _text("precision_policy"), True, True, "precision_policy"),
    Column("params", "params (M)", lambda r, _: nf.count(r.get("params"), 1e6)),
    Column("macs", "{macs}", _macs("macs")),
    Column("traced", "traced {macs}", _macs("macs_traced")),
    Column(
        "img_s",
        "img/s",
        lambda r, _: nf.measured(
            r.get("throughput_median"),
            r.get("throughput_ci_low"),
            r.get("throughput_ci_high"),
            n=r.get("n_samples"),
        ),
    ),
    Column("n", "n", lambda r, _: nf.integer(r.get("n_samples"))),
    Column(
        "ci",
        "{ci}",
        lambda r, _: nf.interval(
            r.get("throughput_ci_low"), r.get("throughput_ci_high"), r.get("n_samples")
        ),
    ),
    Column("p50", "p50 ms", _latency("latency_ms_p50")),
    Column("p90", "p90 ms", _latency("latency_ms_p90")),
    Column("cov", "CoV", lambda r, _: nf.percent(r.get("cov"))),
    Column("roofline", "roofline", lambda r, _: nf.percent(r.get("roofline"))),
    Column("bound", "bound (busy/compute/memory)", _bound, text=True),
    Column("energy", "J/img", lambda r, _: nf.count(r.get("energy_j_per_image"))),
    Column("mem", "mem MiB", lambda r, _: nf.count(r.get("peak_mem_bytes"), nf.MIB)),
    Column("max_batch", "max batch", lambda r, _: nf.integer(r.get("max_batch"))),
    Column("limit", "limit MiB", lambda r, _: nf.count(r.get("mem_limit_bytes"), nf.MIB)),
    Column("status", "status", _status, text=True),
)
BY_NAME = {c.name: c for c in COLUMNS}
#: What a reader needs first, fitting 100 terminal columns.
DEFAULT_COLUMNS = (
    "name", "impl", "mode", "res", "tokens", "batch", "dtype", "backend", "precision", "macs",
    "img_s", "n", "ci", "p50", "mem", "max_batch", "limit", "status",
)  # fmt: skip
#: The ``--wide`` choice: every column (and, for ``--format md``, every raw row field).
WIDE: tuple[str, ...] = tuple(c.name for c in COLUMNS)


def _seen(rows: Sequence[Mapping[str, Any]], stats: Stats) -> list[dict[str, Any]]:
    """``rows`` with the statistics ``stats`` derives for them in place of those stored."""
    return [{**r, **stats(r)} for r in rows]


def _relevant(rows: list[dict[str, Any]], name: str) -> bool:
    """A column that says something for these rows (``tokens`` where a layer is among them:
    beside backbones too, or a ``--tokens`` map would show nowhere; the max-batch columns
    only where a search ran)."""
    if name == "tokens":
        return any(r.get("kind") == "layer" for r in rows) or not rows
    if name == "backend":  # only where a runtime ran: eager tables stay as they were
        return any(r.get("backend", "eager") != "eager" for r in rows)
    if name in ("max_batch", "limit"):
        return any(r.get("max_batch") is not None for r in rows)
    if name in ("img_s", "n", "ci", "p50"):  # a max-batch search times nothing
        return any(r.get("throughput_median") is not None for r in rows) or not rows
    return True


def _shared(rows: list[dict[str, Any]], layers: bool) -> tuple[list[Column], list[str]]:
    """Default columns whose setting every row shares (moved to the title), and the title's
    notes for them (``tokens 14x14`` where ``--tokens`` set the map, ``res 224`` otherwise)."""
    chosen = [BY_NAME[c] for c in DEFAULT_COLUMNS if _relevant(rows, c)]
    if not rows:
        return [], []
    shared = [c for c in chosen if c.setting and len({c.cell(r, layers) for r in rows}) == 1]
    notes = []
    for c in shared:
        v = c.cell(rows[0], layers)
        if v:
            # a bare number or "fused" says too little
            notes.append(
                f"{c.name} {v}" if c.name in ("impl", "res", "tokens", "batch", "precision") else v
            )
    return shared, notes


def default_columns(rows: Sequence[Mapping[str, Any]], stats: Stats) -> tuple[list[str], list[str]]:
    """The default view's columns and the title notes of the settings every row shares."""
    rows = _seen(rows, stats)
    layers = all(r.get("kind") == "layer" for r in rows)
    shared, notes = _shared(rows, layers)
    names = [c for c in DEFAULT_COLUMNS if _relevant(rows, c)]
    return [c for c in names if BY_NAME[c] not in shared], notes


def cells(
    rows: Sequence[Mapping[str, Any]], columns: list[str], stats: Stats
) -> tuple[list[str], list[list[str]], list[bool]]:
    """The headers, plain-text cells and text-ness (else numbers) of ``columns`` over
    ``rows``: the one view the terminal table and Markdown share."""
    rows = _seen(rows, stats)
    layers = all(r.get("kind") == "layer" for r in rows)
    ci = nf.interval_header([r.get("n_samples") for r in rows if r.get("throughput_ci_low")])
    cols = [BY_NAME[c] for c in columns]
    heads = [c.header.format(macs="MMACs" if layers else "GMACs", ci=ci) for c in cols]
    return heads, [[c.cell(r, layers) for c in cols] for r in rows], [c.text for c in cols]


def markdown(headers: Sequence[str], body: Sequence[Sequence[str]], text: Sequence[bool]) -> str:
    """A Markdown table of plain-text cells: numbers right-aligned, ``|`` escaped."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    rule = "|" + "|".join("---" if t else "---:" for t in text) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in body)])


def rows_markdown(
    rows: Sequence[Mapping[str, Any]], stats: Stats, columns: list[str] | None = None
) -> str:
    """``rows`` as the terminal table's columns in Markdown (every default column, as no title
    holds the shared settings here), or as ``columns``."""
    if columns is None:
        columns = [c for c in DEFAULT_COLUMNS if _relevant(_seen(rows, stats), c)]
    return markdown(*cells(rows, columns, stats))
