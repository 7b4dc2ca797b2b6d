"""Suites: YAML files that list what to measure, validated up front and expanded to Cases.

A suite is checked completely before anything is built or written, and every error names the
file, the case and the field, so a typo costs seconds instead of a half-finished run.

Schema (every key optional except ``cases``)::

    name: attention_layers            # default: the file name without .yaml
    description: one line shown by `hilobench suite list`
    defaults:                         # any case field or option, applied where it fits
      batch: 64
      device: cpu                     # cpu | cuda | cuda:N
      dtype: float32                  # float32 | bfloat16 | float16 (cuda)
      impl: reference                 # reference | fused | both
      mode: infer                     # infer | train | both
      budget: 5.0                     # seconds of timing per case
      timeout: 1800                   # seconds before an isolated worker is killed
      threads: null                   # CPU threads (null: physical cores)
      compile: false
      channels_last: false
      count: true                     # traced MAC count besides the analytic one
      min_effect: 0.1                 # gate: smallest slowdown that fails (also per case)
    cases:
      - layer: hilo                   # or a list of names; or `model: litv2_s`
        id: hilo_a05                  # optional; default: the name (ids must be unique)
        res: [224, 384]               # N or "HxW" (height first); lists expand as a product
        alpha: 0.9                    # any layer knob: dim heads tokens alpha window sr rel_pos
      - model: [litv2_s, resnet50]    # any model knob: alpha window attn dtm
        mode: [infer, train]
      - layer: [msa, sra]
        points:                       # settings that vary together (zipped, not crossed)
          - {res: [224, 384]}
          - {res: 224, tokens: 28x28}
    compare:                          # one group, or a list of groups
      name: layers
      members: [hilo, msa]            # case ids, `all`, or `pattern: "glob"` instead
      reference: msa                  # ratios are to this member's case at the same setting
    claims:                           # kept as plain dicts for the regression gate
      - {a: hilo, b: sra, metric: throughput, min_ratio: 1.3}
    gate:                             # regression-gate settings (hilobench gate / compare)
      min_effect: 0.1                 # also: alpha, budget, confirm_fraction, min_samples

The knobs, their checks and which layers / models take them come from the options table
(``hilobench.options``), so a knob a plug-in attention declares is a field here too. A knob
written on a case must be taken by at least one of its layers / models; one inherited from
``defaults`` is dropped where it does not apply.

Any list-valued field (including ``layer`` / ``model``) expands as a product, in the order of
:func:`expand_order`. A compare group interleaves, round by round, all member cases that share
a setting (every Case field except the name and the options, plus the token map); each such
setting must have exactly one case of the reference member.

Claims compare case ``a`` with case ``b`` on ``metric`` and read "a is at least ``min_ratio``
(at most ``max_ratio``) times better than b": the ratio is ``a/b`` for ``throughput`` and
``b/a`` for the costs ``latency``, ``macs``, ``params`` and ``memory``.

A suite file is at most 1 MB, 100,000 YAML nodes and 2,000,000 characters of values (every
alias use counted as a copy) and expands to at most 10,000 cases; all are checked before
anything is expanded, so a hostile or mistyped file costs a second, not the machine's memory.
"""

from __future__ import annotations

import fnmatch
import functools
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hilobench import options
from hilobench.case import DTYPES, IMPLS, Case, parse_hw
from hilobench.errors import ConfigError

TOP_KEYS = ("name", "description", "defaults", "cases", "compare", "claims", "gate")
#: Case fields that map onto :class:`Case` (besides the name and kind).
CASE_KEYS = (
    "res",
    "batch",
    "device",
    "dtype",
    "impl",
    "mode",
    "threads",
    "compile",
    "channels_last",
    "budget",
)
#: Run settings that are not part of a measurement's identity.
RUN_KEYS = ("timeout", "count", "min_effect")
#: Settings of the regression gate a suite may tune (see hilobench.gate.policy).
GATE_KEYS = ("min_effect", "alpha", "budget", "confirm_fraction", "min_samples")
ENTRY_KEYS = ("layer", "model", "id", "points")
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
    "channels_last",
    "budget",
    "timeout",
    "count",
    "min_effect",
)
CLAIM_METRICS = {
    "throughput": "higher",
    "latency": "lower",
    "macs": "lower",
    "params": "lower",
    "memory": "lower",
}
CLAIM_KEYS = ("a", "b", "metric", "min_ratio", "max_ratio", "name", "note")
COMPARE_KEYS = ("name", "members", "pattern", "reference")
#: Case fields that define a compare group's setting, besides the ``tokens`` option.
CONTEXT_FIELDS = (
    "kind",
    "res",
    "batch",
    "device",
    "dtype",
    "impl",
    "mode",
    "threads",
    "compile",
    "channels_last",
)

DEFAULT_TIMEOUT_S = 1800.0
SUITES_DIR = Path(__file__).resolve().parent / "suites"  # package data: ships in the wheel

# Limits checked before anything is expanded: YAML aliases share one object per anchor, so a
# small file can stand for billions of values ("billion laughs"), and list-valued fields expand
# as a product, so three lists of 1000 values are a billion cases. The shipped suites are far
# below every limit.
#: Largest suite file read (bytes).
MAX_SUITE_BYTES = 1_000_000
#: Most YAML nodes a suite may hold, counting every alias use as a copy of what it names.
MAX_YAML_NODES = 100_000
#: Most scalar characters a suite may hold, again counting every alias use as a copy.
MAX_YAML_CHARS = 2_000_000
#: Most cases a suite may expand to.
MAX_CASES = 10_000


@dataclass(frozen=True)
class SuiteCase:
    """One expanded case plus where it came from and how to run it."""

    case: Case
    id: str
    entry: int = 0
    timeout: float = DEFAULT_TIMEOUT_S
    count: bool = True
    #: this case's smallest slowdown that the gate fails on (None: the suite's or the default)
    min_effect: float | None = None

    def context(self) -> tuple[Any, ...]:
        """The setting a compare group matches members on."""
        c = self.case
        return tuple(getattr(c, f) for f in CONTEXT_FIELDS) + (c.opts.get("tokens"),)


@dataclass(frozen=True)
class CompareGroup:
    name: str
    members: tuple[str, ...]
    reference: str


@dataclass
class Suite:
    """A validated suite: its expanded cases, compare groups and claims (plain dicts)."""

    name: str
    description: str
    path: Path | None
    cases: list[SuiteCase]
    compare: list[CompareGroup] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    defaults: dict[str, Any] = field(default_factory=dict)
    entries: int = 0
    #: regression-gate settings (``gate:`` in the file), e.g. ``{"min_effect": 0.15}``
    gate: dict[str, Any] = field(default_factory=dict)

    def group_of(self, case_id: str) -> CompareGroup | None:
        for g in self.compare:
            if case_id in g.members:
                return g
        return None


class SuiteLimitError(ConfigError):
    """A suite beyond the size limits: refused before it is expanded, even by `suite list`."""


class _Where:
    """Builds error messages that name the file, the case and the field."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, problem: str, cls: type[ConfigError] = ConfigError) -> ConfigError:
        prefix = f"{self.source}: " + (f"{where}: " if where else "")
        return cls(prefix + problem)


def _type_name(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, int | float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_value(key: str, v: Any, kind: str) -> Any:
    """Check one scalar value of a case field or option; return it normalised.

    Raises ValueError with the problem (the caller adds file / case / field).
    """

    def want(ok: bool, what: str) -> None:
        if not ok:
            raise ValueError(f"expected {what}, got {v!r} ({_type_name(v)})")

    if key in options.names():  # a knob: the options table checks it
        try:
            return options.check(key, v)
        except ConfigError as e:
            raise ValueError(str(e)) from None
    if key == "res":
        want(_is_int(v) or isinstance(v, str), "N or 'HxW', e.g. 224 or 800x1280")
        try:
            h, w = parse_hw(v, key)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        return h if h == w and _is_int(v) else f"{h}x{w}"
    if key == "batch":
        want(_is_int(v) and v >= 1, "an integer >= 1")
        return v
    if key == "threads":
        want(v is None or (_is_int(v) and v >= 1), "an integer >= 1 or null")
        return v
    if key in ("budget", "timeout"):
        want(_is_num(v) and v > 0, "a number of seconds > 0")
        return float(v)
    if key == "min_effect":
        want(_is_num(v) and 0 < v < 10, "a relative slowdown > 0, e.g. 0.1 for 10%")
        return float(v)
    if key in ("compile", "channels_last", "count"):
        want(isinstance(v, bool), "true or false")
        return v
    if key == "dtype":
        want(v in DTYPES, f"one of {', '.join(DTYPES)}")
        return v
    if key == "device":
        want(isinstance(v, str) and v.split(":")[0] in ("cpu", "cuda"), "cpu, cuda or cuda:N")
        return v
    if key == "impl":
        want(v in (*IMPLS, "both"), f"{', '.join(IMPLS)} or both")
        return v
    if key == "mode":
        want(v in ("infer", "train", "both"), "infer, train or both")
        return v
    raise ValueError("unknown field")  # pragma: no cover - keys are checked before


def _attentions() -> list[str]:
    from hilobench.attention import available_attentions

    return available_attentions()


def _model_entries() -> dict[str, Any]:
    try:
        from hilobench.models import available_models
    except ImportError as e:  # the models package is optional for layer-only suites
        raise ValueError(f"models are unavailable here ({e})") from None
    return {m.name: m for m in available_models()}


def _knob_names(kind: str | None, keys: Iterable[Any]) -> tuple[str, ...]:
    """Knob names of ``kind`` (None: both kinds). A key the table lacks may be a knob that a
    plug-in declares, so the registries are loaded (they import torch) before it is unknown."""
    fields = CASE_KEYS + RUN_KEYS + ENTRY_KEYS + options.names()
    if any(k not in fields for k in keys):
        _attentions()
        try:
            _model_entries()
        except ValueError:
            pass  # no models here: their knobs cannot be declared either
    return options.names(kind)


def expand_order() -> tuple[str, ...]:
    """The order a case entry expands its fields in: case fields, then knobs in table order."""
    return tuple(dict.fromkeys(FIELD_ORDER + options.names()))


def _default_res(name: str) -> int:
    from hilobench.models import get_model

    return int(get_model(name).default_res)


def _as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, list) else [v]


def _expand_values(key: str, v: Any) -> list[Any]:
    vals = _as_list(v)
    if not vals:
        raise ValueError("an empty list expands to no cases")
    out: list[Any] = []
    for x in vals:
        if key == "impl" and x == "both":
            out += ["reference", "fused"]
        elif key == "mode" and x == "both":
            out += ["infer", "train"]
        else:
            out.append(x)
    return out


def load_suite(
    path: Path | str, *, overrides: dict[str, Any] | None = None, check_cases: bool = False
) -> Suite:
    """Read, validate and expand a suite file. ``overrides`` (e.g. ``{"device": "cuda"}``) beat
    both defaults and case entries. ``check_cases`` also builds each layer / asks the model
    registry, which catches settings only a builder can judge (e.g. heads not dividing dim)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"suite file {str(p)!r} not found")
    data = read_yaml(p)
    suite = parse_suite(data, source=str(p), default_name=p.stem, overrides=overrides)
    suite.path = p
    if check_cases:
        check_suite_cases(suite, source=str(p))
    return suite


class _TooBig(Exception):
    """Raised while composing a YAML document that exceeds the node or character limits."""


def _children(node: Any) -> list[Any]:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [x for pair in node.value for x in pair]
    return []


def _expanded_size(root: Any) -> tuple[int, int]:
    """(nodes, scalar characters) of the document with every alias use counted as a copy.

    Each node is visited once (memoised by identity), so a billion-laughs file costs as many
    steps as it has distinct nodes; an alias that refers to itself raises _TooBig.
    """
    import yaml

    memo: dict[int, tuple[int, int]] = {}
    open_: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        nid = id(node)
        if closing:
            kids = [memo[id(k)] for k in _children(node)]
            nodes = 1 + sum(k[0] for k in kids)
            chars = sum(k[1] for k in kids)
            if isinstance(node, yaml.ScalarNode):
                chars += len(node.value)
            memo[nid] = (nodes, chars)
            open_.discard(nid)
        elif nid not in memo:
            if nid in open_:
                raise _TooBig(None, None)
            open_.add(nid)
            stack.append((node, True))
            stack.extend((k, False) for k in _children(node))
    return memo[id(root)]


@functools.cache
def _bounded_loader() -> type:
    """A SafeLoader that stops composing after MAX_YAML_NODES nodes and sizes the composed
    document before constructing it, so no alias is ever expanded past the limits."""
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        composed = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.composed += 1
            if self.composed > MAX_YAML_NODES:
                raise _TooBig(self.composed, None)
            return super().compose_node(parent, index)

        def get_single_data(self) -> Any:
            node = self.get_single_node()
            if node is None:
                return None
            nodes, chars = _expanded_size(node)
            if nodes > MAX_YAML_NODES or chars > MAX_YAML_CHARS:
                raise _TooBig(nodes, chars)
            return self.construct_document(node)

    return BoundedLoader


def _amount(n: int) -> str:
    """``n`` with thousands separators, or its order of magnitude once it gets absurd."""
    return f"{n:,}" if n < 10**15 else f"about 10^{len(str(n)) - 1}"


def read_yaml(p: Path) -> Any:
    """Parse a suite file within the limits (see MAX_SUITE_BYTES and below); ConfigError if not.

    The same data as ``yaml.safe_load`` for any file within the limits."""
    import yaml

    with open(p, "rb") as f:
        raw = f.read(MAX_SUITE_BYTES + 1)
    if len(raw) > MAX_SUITE_BYTES:
        raise SuiteLimitError(
            f"{p}: the file is larger than {MAX_SUITE_BYTES:,} bytes, the limit for a suite"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text (byte {e.start})") from None
    try:
        return yaml.load(text, Loader=_bounded_loader())
    except _TooBig as e:
        nodes, chars = e.args
        if nodes is None:
            problem = "an alias refers to itself, so the suite has no finite size"
        elif chars is None:
            problem = (
                f"holds more than {MAX_YAML_NODES:,} YAML nodes; the limit is {MAX_YAML_NODES:,}"
            )
        elif nodes > MAX_YAML_NODES:
            problem = (
                f"expands to {_amount(nodes)} YAML nodes (aliases counted as copies); "
                f"the limit is {MAX_YAML_NODES:,}"
            )
        else:
            problem = (
                f"expands to {_amount(chars)} characters of values (aliases counted as copies); "
                f"the limit is {MAX_YAML_CHARS:,}"
            )
        raise SuiteLimitError(f"{p}: {problem}") from None
    except RecursionError:
        raise SuiteLimitError(f"{p}: nested too deeply") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{p}: invalid YAML{at}: {problem}") from None


def parse_suite(
    data: Any,
    *,
    source: str = "<suite>",
    default_name: str = "suite",
    overrides: dict[str, Any] | None = None,
) -> Suite:
    """Validate a parsed YAML document and expand it to cases (see the module docstring)."""
    w = _Where(source)
    if not isinstance(data, dict):
        raise w.fail("", f"expected a mapping with 'cases', got {_type_name(data)}")
    for k in data:
        if k not in TOP_KEYS:
            raise w.fail("", f"unknown top-level field {k!r}; allowed: {', '.join(TOP_KEYS)}")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise w.fail("field 'name'", f"expected a non-empty string, got {name!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise w.fail("field 'description'", f"expected a string, got {_type_name(description)}")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise w.fail("field 'defaults'", f"expected a mapping, got {_type_name(defaults)}")
    allowed_defaults = CASE_KEYS + RUN_KEYS + _knob_names(None, defaults)
    for k, v in defaults.items():
        if k not in allowed_defaults:
            raise w.fail(
                f"defaults: field {k!r}",
                f"unknown field; allowed: {', '.join(dict.fromkeys(allowed_defaults))}",
            )
        _check_field(w, "defaults", k, v)
    overrides = dict(overrides or {})
    for k, v in overrides.items():
        if k not in CASE_KEYS + RUN_KEYS:
            raise ConfigError(f"cannot override {k!r}; allowed: {', '.join(CASE_KEYS + RUN_KEYS)}")
        _check_field(_Where("override"), "", k, v)
    raw_cases = data.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise w.fail("field 'cases'", "expected a non-empty list of cases")

    # Cases are counted, never built, before the limit is checked: first from the raw entries
    # (no layer or model registry needed, so nothing heavy is imported), then exactly.
    quick = [_quick_count(i, e, defaults, overrides) for i, e in enumerate(raw_cases, 1)]
    if all(q is not None for q in quick):
        _check_case_count(w, [q for q in quick if q is not None])
    entries = [_check_entry(w, i, e, defaults, overrides) for i, e in enumerate(raw_cases, 1)]
    _check_case_count(w, [(e.where, _entry_count(e)) for e in entries])
    cases: list[SuiteCase] = []
    ids: dict[str, int] = {}
    for entry in entries:
        i = entry.i
        new = _expand(w, entry)
        for sc in new:
            if sc.id in ids and ids[sc.id] != i:
                raise w.fail(
                    _case_label(i, sc.id),
                    f"id {sc.id!r} is already used by case {ids[sc.id]}; give one an 'id:'",
                )
            ids[sc.id] = i
        cases += new
    seen: dict[str, SuiteCase] = {}
    for sc in cases:
        if sc.case.key in seen:
            first = seen[sc.case.key]
            raise w.fail(
                _case_label(sc.entry, sc.id),
                f"measures the same thing as case {first.entry} ({first.id}): {sc.case.label()}",
            )
        seen[sc.case.key] = sc
    groups = _parse_compare(w, data.get("compare"), cases)
    claims = _parse_claims(w, data.get("claims"), set(ids))
    gate = _parse_gate(w, data.get("gate"))
    return Suite(
        name.strip(),
        description.strip(),
        None,
        cases,
        groups,
        claims,
        dict(defaults),
        len(raw_cases),
        gate,
    )


def _parse_gate(w: _Where, raw: Any) -> dict[str, Any]:
    """``gate: {min_effect, alpha, budget, confirm_fraction, min_samples}``, all optional."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise w.fail("field 'gate'", f"expected a mapping, got {_type_name(raw)}")
    for k, v in raw.items():
        where = f"gate: field {k!r}"
        if k not in GATE_KEYS:
            raise w.fail(where, f"unknown field; allowed: {', '.join(GATE_KEYS)}")
        if k == "min_samples":
            if not (_is_int(v) and v >= 9):
                raise w.fail(where, f"expected an integer >= 9, got {v!r}")
        elif k in ("alpha", "confirm_fraction"):
            if not (_is_num(v) and 0 < v < 1):
                raise w.fail(where, f"expected a number in (0, 1), got {v!r}")
        elif not (_is_num(v) and v > 0):
            raise w.fail(where, f"expected a number > 0, got {v!r}")
    return dict(raw)


def _case_label(i: int, cid: str | None) -> str:
    return f"case {i}" + (f" ({cid})" if cid else "")


def _check_field(w: _Where, where: str, key: str, v: Any) -> None:
    label = (f"{where}: " if where else "") + f"field {key!r}"
    try:
        for x in _expand_values(key, v):
            _check_value(key, x, "")
    except ValueError as e:
        raise w.fail(label, str(e)) from None


@dataclass
class _Entry:
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
        return {k: v for k, v in merged.items() if _takes(self.kind, name, k)}


def _check_entry(
    w: _Where, i: int, entry: Any, defaults: dict[str, Any], overrides: dict[str, Any]
) -> _Entry:
    if not isinstance(entry, dict):
        raise w.fail(
            f"case {i}", f"expected a mapping like {{layer: hilo}}, got {_type_name(entry)}"
        )
    kinds = [k for k in ("layer", "model") if k in entry]
    if len(kinds) != 1:
        raise w.fail(f"case {i}", "needs exactly one of 'layer' or 'model'")
    kind = kinds[0]
    names = _as_list(entry[kind])
    if not names or not all(isinstance(n, str) and n for n in names):
        raise w.fail(
            f"case {i}", f"field {kind!r}: expected a name or a list of names, got {entry[kind]!r}"
        )
    cid = entry.get("id")
    if cid is not None:
        if not isinstance(cid, str) or not cid.strip():
            raise w.fail(f"case {i}", f"field 'id': expected a non-empty string, got {cid!r}")
        if len(names) > 1:
            raise w.fail(
                _case_label(i, cid),
                f"field 'id': an id needs a single {kind} name, got {len(names)}",
            )
    where = _case_label(i, cid or (names[0] if len(names) == 1 else None))
    # the registry first: plug-ins declare their knobs as they register
    known = _attentions() if kind == "layer" else _models_or_fail(w, where)
    knob_names = options.names(kind)
    allowed = ENTRY_KEYS + CASE_KEYS + RUN_KEYS + knob_names
    for k in entry:
        if k not in allowed:
            other = "model" if kind == "layer" else "layer"
            hint = f" (a {other} option)" if k in options.names(other) else ""
            raise w.fail(
                f"{where}: field {k!r}",
                f"unknown field for a {kind}{hint}; allowed: {', '.join(dict.fromkeys(allowed))}",
            )
    for n in names:
        if kind == "model" and n.startswith("timm:"):
            continue  # any timm model, resolved by the registry when built
        if n not in known:
            raise w.fail(
                f"{where}: field {kind!r}",
                f"unknown {'attention' if kind == 'layer' else 'model'} {n!r}; "
                f"choose from: {', '.join(known)}",
            )
        if kind == "model" and getattr(known[n], "source", "") == "unavailable":
            raise w.fail(
                f"{where}: field 'model'",
                f"model {n!r} cannot be built here: "
                f"{getattr(known[n], 'reason', '') or 'unavailable'}",
            )
    fields = {k: v for k, v in entry.items() if k not in ENTRY_KEYS}
    for k, v in fields.items():
        _check_field(w, where, k, v)
    points = entry.get("points", [{}])
    if not isinstance(points, list) or not points:
        raise w.fail(f"{where}: field 'points'", "expected a non-empty list of mappings")
    for j, pt in enumerate(points, 1):
        if not isinstance(pt, dict):
            raise w.fail(f"{where}: points[{j}]", f"expected a mapping, got {_type_name(pt)}")
        for k, v in pt.items():
            if k not in CASE_KEYS + RUN_KEYS + knob_names:
                raise w.fail(f"{where}: points[{j}]: field {k!r}", f"unknown field for a {kind}")
            if k in fields:
                raise w.fail(f"{where}: points[{j}]: field {k!r}", "is also set on the case")
            _check_field(w, f"{where}: points[{j}]", k, v)
    _check_knobs(w, where, kind, names, fields, points)
    return _Entry(i, where, kind, names, cid, knob_names, fields, points, defaults, overrides)


def _entry_count(e: _Entry) -> int:
    """How many cases ``e`` expands to, without building them: per name and point, the product
    of its list lengths. Names that take the same options count alike, so this costs about
    (distinct option sets) x (points) steps however long the lists are."""
    keys = set(e.defaults) | set(e.fields) | set(e.overrides) | {k for pt in e.points for k in pt}
    takers: dict[str, frozenset[str]] = {}
    alike: dict[frozenset[str], int] = {}
    for n in e.names:
        if n not in takers:
            takers[n] = frozenset(k for k in keys if _takes(e.kind, n, k))
        alike[takers[n]] = alike.get(takers[n], 0) + 1
    total = 0
    for pt in e.points:
        lengths = {k: len(_expand_values(k, v)) for k, v in e.merged(None, pt).items()}
        for took, n_names in alike.items():
            total += n_names * math.prod(v for k, v in lengths.items() if k in took)
    return total


def _quick_count(
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
    names, points = _as_list(entry[kind]), entry.get("points", [{}])
    if not names or not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        return None
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
            lengths = {k: len(_expand_values(k, v)) for k, v in merged.items()}
        except ValueError:
            return None
        if any(n > 1 for k, n in lengths.items() if k in varies):
            return None
        total += math.prod(lengths.values())
    cid = entry.get("id")
    label = cid if isinstance(cid, str) else names[0] if len(names) == 1 else None
    return _case_label(i, label if isinstance(label, str) else None), total * len(names)


def _check_case_count(w: _Where, counts: list[tuple[str, int]]) -> None:
    """Refuse a suite of more than MAX_CASES cases, naming the count and the largest entry."""
    total = sum(n for _, n in counts)
    if total > MAX_CASES:
        where, n = max(counts, key=lambda c: c[1])
        raise w.fail(
            "",
            f"expands to {_amount(total)} cases ({where}: {_amount(n)}); "
            f"the limit is {MAX_CASES:,}",
            SuiteLimitError,
        )


def _expand(w: _Where, e: _Entry) -> list[SuiteCase]:
    out: list[SuiteCase] = []
    for name in e.names:
        for pt in e.points:
            merged = e.merged(name, pt)
            if e.kind == "model" and "res" not in merged:
                merged["res"] = _default_res(name)
            keys = sorted(merged, key=expand_order().index)
            for combo in itertools.product(*(_expand_values(k, merged[k]) for k in keys)):
                values = dict(zip(keys, combo, strict=True))
                out.append(_make_case(w, e.i, e.cid or name, e.kind, name, values))
    return out


def _models_or_fail(w: _Where, where: str) -> dict[str, Any]:
    try:
        return _model_entries()
    except ValueError as e:
        raise w.fail(where, str(e)) from None


def _takes(kind: str, name: str, key: str) -> bool:
    """Whether ``name`` takes field ``key`` (case fields and run settings fit every case)."""
    return key not in options.names(kind) or options.takes(kind, name, key)


def _check_knobs(
    w: _Where,
    where: str,
    kind: str,
    names: list[str],
    fields: dict[str, Any],
    points: list[dict],
) -> None:
    """An option written on a case must drive at least one of its layers / models; options
    inherited from the defaults are dropped where they do not apply."""
    given = set(fields) | {k for pt in points for k in pt}
    knobs = sorted(k for k in given if k in options.names(kind))
    try:
        options.check_taken(kind, names, knobs, repr)
    except options.KnobError as e:
        raise w.fail(f"{where}: field {e.key!r}", str(e)) from None


def _make_case(
    w: _Where, i: int, cid: str, kind: str, name: str, values: dict[str, Any]
) -> SuiteCase:
    where = _case_label(i, cid)
    case_kw = {k: values[k] for k in CASE_KEYS if k in values}
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
    )


def _parse_compare(w: _Where, raw: Any, cases: list[SuiteCase]) -> list[CompareGroup]:
    if raw is None:
        return []
    groups_raw = raw if isinstance(raw, list) else [raw]
    ids = list(dict.fromkeys(sc.id for sc in cases))
    groups: list[CompareGroup] = []
    owner: dict[str, str] = {}
    for n, g in enumerate(groups_raw, 1):
        if not isinstance(g, dict):
            raise w.fail(f"compare group {n}", f"expected a mapping, got {_type_name(g)}")
        gname = g.get("name", f"group{n}")
        where = f"compare {gname!r}"
        if not isinstance(gname, str) or not gname:
            raise w.fail(f"compare group {n}: field 'name'", "expected a non-empty string")
        for k in g:
            if k not in COMPARE_KEYS:
                raise w.fail(
                    f"{where}: field {k!r}", f"unknown field; allowed: {', '.join(COMPARE_KEYS)}"
                )
        if ("members" in g) == ("pattern" in g):
            raise w.fail(where, "needs exactly one of 'members' (case ids or 'all') or 'pattern'")
        if "pattern" in g:
            pat = g["pattern"]
            if not isinstance(pat, str):
                raise w.fail(f"{where}: field 'pattern'", "expected a glob string, e.g. '*'")
            members = [i for i in ids if fnmatch.fnmatchcase(i, pat)]
            if not members:
                raise w.fail(
                    f"{where}: field 'pattern'",
                    f"{pat!r} matches no case id; case ids: {', '.join(ids)}",
                )
        elif g["members"] == "all":
            members = ids
        else:
            members = g["members"]
            if not isinstance(members, list) or not members:
                raise w.fail(f"{where}: field 'members'", "expected a list of case ids or 'all'")
            for m in members:
                if m not in ids:
                    raise w.fail(
                        f"{where}: field 'members'",
                        f"unknown case id {m!r}; case ids: {', '.join(ids)}",
                    )
        ref = g.get("reference")
        if ref is None:
            ref = members[0]
        if ref not in members:
            raise w.fail(
                f"{where}: field 'reference'",
                f"{ref!r} is not a member; members: {', '.join(members)}",
            )
        for m in members:
            if m in owner:
                raise w.fail(
                    f"{where}: field 'members'", f"case {m!r} is already in compare {owner[m]!r}"
                )
            owner[m] = gname
        group = CompareGroup(gname, tuple(members), ref)
        for items in _contexts(group, cases).values():
            refs = [sc for sc in items if sc.id == ref]
            if len(refs) != 1:
                sample = items[0].case
                raise w.fail(
                    f"{where}: field 'reference'",
                    f"needs exactly one {ref!r} case at every setting; found {len(refs)} at "
                    f"{sample.label()}",
                )
        groups.append(group)
    return groups


def _contexts(group: CompareGroup, cases: list[SuiteCase]) -> dict[tuple, list[SuiteCase]]:
    out: dict[tuple, list[SuiteCase]] = {}
    for sc in cases:
        if sc.id in group.members:
            out.setdefault(sc.context(), []).append(sc)
    return out


def _parse_claims(w: _Where, raw: Any, ids: set[str]) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise w.fail("field 'claims'", f"expected a list of claims, got {_type_name(raw)}")
    claims = []
    for n, c in enumerate(raw, 1):
        where = f"claim {n}"
        if not isinstance(c, dict):
            raise w.fail(
                where,
                f"expected a mapping like {{a: hilo, b: sra, metric: "
                f"throughput, min_ratio: 1.3}}, got {_type_name(c)}",
            )
        for k in c:
            if k not in CLAIM_KEYS:
                raise w.fail(
                    f"{where}: field {k!r}", f"unknown field; allowed: {', '.join(CLAIM_KEYS)}"
                )
        for k in ("a", "b"):
            if k not in c:
                raise w.fail(where, f"missing field {k!r} (a case id)")
            if c[k] not in ids:
                raise w.fail(
                    f"{where}: field {k!r}",
                    f"unknown case id {c[k]!r}; case ids: {', '.join(sorted(ids))}",
                )
        metric = c.get("metric", "throughput")
        if metric not in CLAIM_METRICS:
            raise w.fail(
                f"{where}: field 'metric'",
                f"unknown metric {metric!r}; choose from: {', '.join(CLAIM_METRICS)}",
            )
        if "min_ratio" not in c and "max_ratio" not in c:
            raise w.fail(where, "needs 'min_ratio' and/or 'max_ratio'")
        for k in ("min_ratio", "max_ratio"):
            if k in c and not (_is_num(c[k]) and c[k] > 0):
                raise w.fail(f"{where}: field {k!r}", f"expected a number > 0, got {c[k]!r}")
        claims.append({**c, "metric": metric})
    return claims


def check_suite_cases(suite: Suite, *, source: str | None = None) -> None:
    """Let the builders judge every case (layers are built, models asked), naming the case."""
    from hilobench.bench import validate_case

    w = _Where(source or str(suite.path or suite.name))
    for sc in suite.cases:
        try:
            validate_case(sc.case)
        except (ConfigError, ValueError) as e:
            raise w.fail(_case_label(sc.entry, sc.id), str(e)) from None


def find_suite(spec: str | Path, root: Path | None = None) -> Path:
    """A suite path, or the name of a shipped suite (``ci_smoke`` → suites/ci_smoke.yaml)."""
    p = Path(spec)
    if p.is_file():
        return p
    for d in _suite_dirs(root):
        for cand in (d / f"{spec}.yaml", d / f"{spec}.yml", d / str(spec)):
            if cand.is_file():
                return cand
    names = ", ".join(sorted(q.stem for d in _suite_dirs(root) for q in _yaml_files(d)))
    raise ConfigError(f"suite {str(spec)!r} not found; shipped suites: {names or 'none'}")


def _suite_dirs(root: Path | None) -> list[Path]:
    dirs = [root] if root is not None else [Path("suites"), SUITES_DIR]
    return [d for d in dict.fromkeys(d.resolve() for d in dirs) if d.is_dir()]


def _yaml_files(d: Path) -> Iterable[Path]:
    return sorted(list(d.glob("*.yaml")) + list(d.glob("*.yml")))


def shipped_suites(root: Path | None = None) -> list[Path]:
    """Suite files in ``root`` (default: ./suites, then the package's own suites/)."""
    seen: dict[str, Path] = {}
    for d in _suite_dirs(root):
        for p in _yaml_files(d):
            seen.setdefault(p.name, p)
    return sorted(seen.values(), key=lambda p: p.name)


def select(cases: list[SuiteCase], patterns: str | None) -> list[SuiteCase]:
    """Cases whose id, name or label matches one of the comma-separated ``patterns``.

    A pattern with glob characters (``*?[``) must match a whole id or name; a plain word
    matches any part of the id, the name or the label.
    """
    if not patterns:
        return cases
    pats = [p.strip() for p in patterns.split(",") if p.strip()]

    def hit(sc: SuiteCase, pat: str) -> bool:
        if any(ch in pat for ch in "*?["):
            return fnmatch.fnmatchcase(sc.id, pat) or fnmatch.fnmatchcase(sc.case.name, pat)
        return pat in sc.id or pat in sc.case.name or pat in sc.case.label()

    return [sc for sc in cases if any(hit(sc, p) for p in pats)]
