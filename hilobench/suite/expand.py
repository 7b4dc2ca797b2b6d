"""Suite case entries: checked one by one, counted by arithmetic, then expanded to SuiteCases.

Any list-valued field (including ``layer`` / ``model``) expands as a product, in the order of
:func:`expand_order`; ``points`` are settings that vary together (zipped, not crossed). Merged
settings go defaults < case < point < overrides, and a knob inherited from the defaults is
dropped where the layer or model does not take it.

List-valued fields multiply, so three lists of 1000 values are a billion cases: an entry is
counted from its list lengths (:func:`quick_count` from the raw file, before any registry is
loaded; :func:`entry_count` exactly, once checked) and a suite over :data:`MAX_CASES` is refused
before a single case is built.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from hilobench.core import options
from hilobench.core.case import DEFAULT_IMPL, Case
from hilobench.core.errors import ConfigError, SuiteLimitError, did_you_mean
from hilobench.core.names import is_glob
from hilobench.core.plan import DEFAULT_TIMEOUT_S, SuiteCase
from hilobench.suite.fields import (
    CASE_KEYS,
    ENTRY_KEYS,
    RUN_KEYS,
    Where,
    as_list,
    attentions,
    case_label,
    check_field,
    check_value,
    expand_values,
    model_entries,
    takes,
    type_name,
)
from hilobench.suite.yaml_limits import amount

#: Most cases a suite may expand to.
MAX_CASES = 10_000
#: Expansion order of the case fields (knobs follow in table order; the token map goes with the
#: resolution it belongs to).
FIELD_ORDER = (
    "res",
    "tokens",
    "mode",
    "impl",
    "batch",
    "dtype",
    "device",
    "threads",
    "compile",
    "backend",
    "channels_last",
    "budget",
    "timeout",
    "count",
    "min_effect",
    "max_batch",
)


def expand_order() -> tuple[str, ...]:
    """The order a case entry expands its fields in: case fields, then knobs in table order."""
    return tuple(dict.fromkeys(FIELD_ORDER + options.names()))


@dataclass
class Entry:
    """One checked ``cases:`` entry, not yet expanded."""

    i: int
    where: str
    kind: str
    names: list[str]
    cid: str | None
    options: tuple[str, ...]
    fields: dict[str, Any]
    points: list[dict[str, Any]]
    defaults: dict[str, Any]
    overrides: dict[str, Any]

    def merged(self, name: str | None, pt: dict[str, Any]) -> dict[str, Any]:
        """The settings of ``name`` at point ``pt``: defaults < case < point < overrides
        (``name`` None: before dropping the options that name does not take)."""
        keys = CASE_KEYS + RUN_KEYS + self.options
        merged = {k: v for k, v in self.defaults.items() if k in keys}
        merged.update(self.fields)
        merged.update(pt)
        merged.update(self.overrides)
        if name is None:
            return merged
        return {k: v for k, v in merged.items() if takes(self.kind, name, k)}


def check_entry(
    w: Where, i: int, entry: Any, defaults: dict[str, Any], overrides: dict[str, Any]
) -> Entry:
    """Check ``cases:`` entry ``i`` (1-based) completely, naming the case and field at fault."""
    if not isinstance(entry, dict):
        raise w.fail(
            f"case {i}", f"expected a mapping like {{layer: hilo}}, got {type_name(entry)}"
        )
    kinds = [k for k in ("layer", "model") if k in entry]
    if len(kinds) != 1:
        raise w.fail(f"case {i}", "needs exactly one of 'layer' or 'model'")
    kind = kinds[0]
    names = as_list(entry[kind])
    if not names or not all(isinstance(n, str) and n for n in names):
        raise w.fail(
            f"case {i}", f"field {kind!r}: expected a name or a list of names, got {entry[kind]!r}"
        )
    cid = entry.get("id")
    if cid is not None and (not isinstance(cid, str) or not cid.strip()):
        raise w.fail(f"case {i}", f"field 'id': expected a non-empty string, got {cid!r}")
    where = case_label(i, cid or (names[0] if len(names) == 1 else None))
    # the registry first: plug-ins declare their knobs as they register
    known = attentions() if kind == "layer" else _models_or_fail(w, where)
    names = _resolve(w, f"{where}: field {kind!r}", kind, names)
    if cid is not None and len(names) > 1:
        raise w.fail(
            case_label(i, cid), f"field 'id': an id needs a single {kind} name, got {len(names)}"
        )
    knob_names = options.names(kind)
    allowed = ENTRY_KEYS + CASE_KEYS + RUN_KEYS + knob_names
    for k in entry:
        if k not in allowed:
            other = "model" if kind == "layer" else "layer"
            hint = f" (a {other} option)" if k in options.names(other) else ""
            raise w.fail(
                f"{where}: field {k!r}",
                f"unknown field for a {kind}{hint or did_you_mean(k, allowed)}; "
                f"allowed: {', '.join(dict.fromkeys(allowed))}",
            )
    for n in names:
        row = known.get(n) if isinstance(known, dict) else None  # a model's registry row
        if getattr(row, "source", "") == "unavailable":
            raise w.fail(
                f"{where}: field 'model'",
                f"model {n!r} cannot be built here: {getattr(row, 'reason', '') or 'unavailable'}",
            )
    fields = {k: v for k, v in entry.items() if k not in ENTRY_KEYS}
    for k, v in fields.items():
        check_field(w, where, k, v)
    points = entry.get("points", [{}])
    if not isinstance(points, list) or not points:
        raise w.fail(f"{where}: field 'points'", "expected a non-empty list of mappings")
    for j, pt in enumerate(points, 1):
        if not isinstance(pt, dict):
            raise w.fail(f"{where}: points[{j}]", f"expected a mapping, got {type_name(pt)}")
        for k, v in pt.items():
            if k not in CASE_KEYS + RUN_KEYS + knob_names:
                raise w.fail(f"{where}: points[{j}]: field {k!r}", f"unknown field for a {kind}")
            if k in fields:
                raise w.fail(f"{where}: points[{j}]: field {k!r}", "is also set on the case")
            check_field(w, f"{where}: points[{j}]", k, v)
    _check_knobs(w, where, kind, names, fields, points)
    return Entry(i, where, kind, names, cid, knob_names, fields, points, defaults, overrides)


def _resolve(w: Where, where: str, kind: str, names: list[str]) -> list[str]:
    """Names as the CLI takes them (globs, timm's full names), by the registry's resolver."""
    try:
        if kind == "layer":
            from hilobench.attention import resolve_attentions

            return resolve_attentions(names)
        from hilobench.models import resolve_models

        return resolve_models(names)
    except ConfigError as e:
        raise w.fail(where, str(e)) from None


def _models_or_fail(w: Where, where: str) -> dict[str, Any]:
    try:
        return model_entries()
    except ValueError as e:
        raise w.fail(where, str(e)) from None


def _check_knobs(
    w: Where,
    where: str,
    kind: str,
    names: list[str],
    fields: dict[str, Any],
    points: list[dict[str, Any]],
) -> None:
    """An option written on a case must drive at least one of its layers / models; options
    inherited from the defaults are dropped where they do not apply."""
    given = set(fields) | {k for pt in points for k in pt}
    knobs = sorted(k for k in given if k in options.names(kind))
    try:
        options.check_taken(kind, names, knobs, repr)
    except options.KnobError as e:
        raise w.fail(f"{where}: field {e.key!r}", str(e)) from None


def entry_count(e: Entry) -> int:
    """How many cases ``e`` expands to, without building them: per name and point, the product
    of its list lengths. Names that take the same options count alike, so this costs about
    (distinct option sets) x (points) steps however long the lists are."""
    keys = set(e.defaults) | set(e.fields) | set(e.overrides) | {k for pt in e.points for k in pt}
    takers: dict[str, frozenset[str]] = {}
    alike: dict[frozenset[str], int] = {}
    for n in e.names:
        if n not in takers:
            takers[n] = frozenset(k for k in keys if takes(e.kind, n, k))
        alike[takers[n]] = alike.get(takers[n], 0) + 1
    total = 0
    for pt in e.points:
        lengths = {k: len(expand_values(k, v)) for k, v in e.merged(None, pt).items()}
        for took, n_names in alike.items():
            total += n_names * math.prod(v for k, v in lengths.items() if k in took)
    return total


def quick_count(
    i: int, entry: Any, defaults: dict[str, Any], overrides: dict[str, Any]
) -> tuple[str, int] | None:
    """(label, cases) of a raw entry where that is plain from the file alone: None when the
    entry is malformed (the full check says how) or when an option that only some layers or
    models take is a list, so the count depends on the registry."""
    if not isinstance(entry, dict):
        return None
    kinds = [k for k in ("layer", "model") if k in entry]
    if len(kinds) != 1:
        return None
    kind = kinds[0]
    names, points = as_list(entry[kind]), entry.get("points", [{}])
    if not names or not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        return None
    if any(isinstance(n, str) and is_glob(n) for n in names):
        return None  # a glob's count depends on the registry
    knobs = options.knobs(kind)
    varies = {k.name for k in knobs if not k.every}
    keys = CASE_KEYS + RUN_KEYS + tuple(k.name for k in knobs)
    unknown = [k for k in entry if k not in keys + ENTRY_KEYS]
    if unknown or any(k not in keys for pt in points for k in pt):
        return None  # a field the table does not know (yet): the full check says more
    total = 0
    for pt in points:
        merged = {k: v for k, v in defaults.items() if k in keys}
        merged.update((k, v) for k, v in entry.items() if k in keys)
        merged.update(pt)
        merged.update(overrides)
        try:
            lengths = {k: len(expand_values(k, v)) for k, v in merged.items()}
        except ValueError:
            return None
        if any(n > 1 for k, n in lengths.items() if k in varies):
            return None
        total += math.prod(lengths.values())
    cid = entry.get("id")
    label = cid if isinstance(cid, str) else names[0] if len(names) == 1 else None
    return case_label(i, label if isinstance(label, str) else None), total * len(names)


def check_case_count(w: Where, counts: list[tuple[str, int]]) -> None:
    """Refuse a suite of more than MAX_CASES cases, naming the count and the largest entry."""
    total = sum(n for _, n in counts)
    if total > MAX_CASES:
        where, n = max(counts, key=lambda c: c[1])
        raise w.fail(
            "",
            f"expands to {amount(total)} cases ({where}: {amount(n)}); the limit is {MAX_CASES:,}",
            SuiteLimitError,
        )


def expand(w: Where, e: Entry) -> list[SuiteCase]:
    """The cases of a checked entry, in expansion order."""
    out: list[SuiteCase] = []
    for name in e.names:
        for pt in e.points:
            merged = e.merged(name, pt)
            if e.kind == "model" and "res" not in merged:
                merged["res"] = _default_res(name)
            keys = sorted(merged, key=expand_order().index)
            for combo in itertools.product(*(expand_values(k, merged[k]) for k in keys)):
                values = dict(zip(keys, combo, strict=True))
                out.append(_make_case(w, e.i, e.cid or name, e.kind, name, values))
    return out


def _default_res(name: str) -> int:
    from hilobench.models import get_model  # imports torch (~1.5 s)

    return int(get_model(name).default_res)


def _make_case(
    w: Where, i: int, cid: str, kind: str, name: str, values: dict[str, Any]
) -> SuiteCase:
    where = case_label(i, cid)
    case_kw = {k: values[k] for k in CASE_KEYS if k in values}
    case_kw.setdefault("impl", DEFAULT_IMPL)  # a suite's default is the command line's
    limit = check_value("max_batch", values["max_batch"]) if "max_batch" in values else None
    if limit is not None:  # the search picks the batch, as --max-batch does
        if "batch" in values:
            raise w.fail(f"{where}: field 'max_batch'", "searches the batch; give it or batch")
        case_kw["batch"] = 1
    opts = {k: v for k, v in values.items() if k not in CASE_KEYS + RUN_KEYS}
    try:
        options.check_together(kind, opts)
    except options.KnobError as e:
        raise w.fail(f"{where}: field {e.key!r}", str(e)) from None
    for k, v in opts.items():
        if options.get(k).type == "hw":  # token maps are kept as "HxW"
            opts[k] = options.check(k, v)
    try:
        case = Case(kind, name, options=tuple(opts.items()), **case_kw)
    except ConfigError as e:
        raise w.fail(where, str(e)) from None
    return SuiteCase(
        case,
        cid,
        i,
        timeout=float(values.get("timeout", DEFAULT_TIMEOUT_S)),
        count=bool(values.get("count", True)),
        min_effect=values.get("min_effect"),
        max_batch=limit,
    )
