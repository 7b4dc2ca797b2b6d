"""Suites: YAML files that list what to measure, loaded, validated up front and expanded.

A suite is checked completely before anything is built or written, and every error names the
file, the case and the field, so a typo costs seconds instead of a half-finished run.

Schema (every key optional except ``cases``)::

    name: attention_layers            # default: the file name without .yaml
    description: one line shown by `hilobench suite list`
    plugins: [my_attn.py]             # Python files to import first (relative to this file)
    defaults:                         # any case field or option, applied where it fits
      batch: 64
      device: cpu                     # cpu | cuda | cuda:N
      dtype: float32                  # float32 | tf32 (cuda) | bfloat16 | float16 (cuda)
      impl: reference                 # reference | fused | both
      mode: infer                     # infer | train | both
      budget: 5.0                     # seconds of timing per case
      timeout: 1800                   # seconds before an isolated worker is killed
      threads: null                   # CPU threads (null: physical cores)
      compile: false                  # = backend: compile
      backend: eager                  # eager | compile | onnxruntime | openvino | tensorrt
      channels_last: false
      count: true                     # traced MAC count besides the analytic one
      min_effect: 0.1                 # gate: smallest slowdown that fails (also per case)
    cases:
      - layer: hilo                   # or a list; globs ('*msa'), timm's names; or `model:`
        id: hilo_a05                  # optional; default: the name (ids must be unique)
        res: [224, 384]               # N or "HxW" (height first); lists expand as a product
        alpha: 0.9                    # any layer knob: dim heads tokens alpha window sr rel_pos
      - model: [litv2_s, resnet50]    # any model knob: attn attn4 dtm head, and the layer
        mode: [infer, train]          #   knobs, for the swapped attention (models/swap.py)
      - model: litv2_s
        max_batch: {mem_limit: 8GiB}  # the largest batch within the limit, one row per case
                                      #   (as --max-batch; then no batch field)
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
      min_effect: 0.1                 # also: significance, budget, confirm_fraction, min_samples
    slurm:                            # suite run --executor slurm (options override these)
      partition: [a100, v100]         # one run directory per partition (machine class)
      gpus_per_node: 1                # also: constraint, time, array_parallelism,
      time: "2:00:00"                 #   units_per_job, cpus_per_task

The knobs, their checks and which layers / models take them come from the options table
(``hilobench.core.options``), so a knob a plug-in attention declares is a field here too. A knob
written on a case must be taken by at least one of its layers / models; one inherited from
``defaults`` is dropped where it does not apply.

This module reads a file into a :class:`Suite` and finds suite files; the work is shared out:
:mod:`hilobench.suite.yaml_limits` (the bounded YAML reader), :mod:`hilobench.suite.fields` (fields
and
their checks), :mod:`hilobench.suite.expand` (case entries: lists expand as a product; the case
count), :mod:`hilobench.suite.sections` (compare groups, claims, gate settings) and
:mod:`hilobench.core.plan` (SuiteCase and CompareGroup, all the runner needs).

A suite file is at most 1 MB, 100,000 YAML nodes and 2,000,000 characters of values (every
alias use counted as a copy) and expands to at most 10,000 cases; all are checked before
anything is expanded, so a hostile or mistyped file costs a second, not the machine's memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hilobench.core.errors import ConfigError, did_you_mean
from hilobench.core.plan import CompareGroup, SuiteCase
from hilobench.suite.expand import check_case_count, check_entry, entry_count, expand, quick_count
from hilobench.suite.fields import (
    CASE_KEYS,
    RUN_KEYS,
    Where,
    case_label,
    check_field,
    knob_names,
    type_name,
)
from hilobench.suite.sections import parse_claims, parse_compare, parse_gate, parse_slurm
from hilobench.suite.yaml_limits import read_yaml

TOP_KEYS = (
    "name", "description", "plugins", "defaults", "cases", "compare", "claims", "gate", "slurm",
)  # fmt: skip
SUITES_DIR = (
    Path(__file__).resolve().parents[1] / "data" / "suites"
)  # package data: ships in the wheel


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
    #: scheduler settings (``slurm:`` in the file), e.g. ``{"partition": "a100"}``
    slurm: dict[str, Any] = field(default_factory=dict)

    def group_of(self, case_id: str) -> CompareGroup | None:
        for g in self.compare:
            if case_id in g.members:
                return g
        return None


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


def load_plugins(w: Where, plugins: Any, source: str) -> None:
    """Import the suite's ``plugins:`` files (paths relative to the suite file), so that the
    attentions and knobs they register can be named in it."""
    if plugins is None:
        return
    if not isinstance(plugins, list) or not all(isinstance(f, str) and f for f in plugins):
        raise w.fail("field 'plugins'", f"expected a list of Python file paths, got {plugins!r}")
    from hilobench.core.plugins import load_plugin_file  # the files import torch: plug-ins only

    base = Path(source).parent if Path(source).is_file() else Path.cwd()
    for f in plugins:
        try:
            load_plugin_file(base / Path(f).expanduser())
        except ConfigError as e:
            raise w.fail("field 'plugins'", str(e)) from None


def parse_suite(
    data: Any,
    *,
    source: str = "<suite>",
    default_name: str = "suite",
    overrides: dict[str, Any] | None = None,
) -> Suite:
    """Validate a parsed YAML document and expand it to cases (see the module docstring)."""
    w = Where(source)
    if not isinstance(data, dict):
        raise w.fail("", f"expected a mapping with 'cases', got {type_name(data)}")
    for k in data:
        if k not in TOP_KEYS:
            raise w.fail("", f"unknown top-level field {k!r}; allowed: {', '.join(TOP_KEYS)}")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise w.fail("field 'name'", f"expected a non-empty string, got {name!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise w.fail("field 'description'", f"expected a string, got {type_name(description)}")
    load_plugins(w, data.get("plugins"), source)
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise w.fail("field 'defaults'", f"expected a mapping, got {type_name(defaults)}")
    allowed_defaults = CASE_KEYS + RUN_KEYS + knob_names(None, defaults)
    for k, v in defaults.items():
        if k not in allowed_defaults:
            raise w.fail(
                f"defaults: field {k!r}",
                f"unknown field; allowed: {', '.join(dict.fromkeys(allowed_defaults))}",
            )
        check_field(w, "defaults", k, v)
    overrides = dict(overrides or {})
    for k, v in overrides.items():
        if k not in CASE_KEYS + RUN_KEYS:
            raise ConfigError(f"cannot override {k!r}; allowed: {', '.join(CASE_KEYS + RUN_KEYS)}")
        check_field(Where("override"), "", k, v)
    raw_cases = data.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise w.fail("field 'cases'", "expected a non-empty list of cases")

    # Cases are counted, never built, before the limit is checked: first from the raw entries
    # (no layer or model registry needed, so nothing heavy is imported), then exactly.
    quick = [quick_count(i, e, defaults, overrides) for i, e in enumerate(raw_cases, 1)]
    if all(q is not None for q in quick):
        check_case_count(w, [q for q in quick if q is not None])
    entries = [check_entry(w, i, e, defaults, overrides) for i, e in enumerate(raw_cases, 1)]
    check_case_count(w, [(e.where, entry_count(e)) for e in entries])
    cases: list[SuiteCase] = []
    ids: dict[str, int] = {}
    for entry in entries:
        i = entry.i
        new = expand(w, entry)
        for sc in new:
            if sc.id in ids and ids[sc.id] != i:
                raise w.fail(
                    case_label(i, sc.id),
                    f"id {sc.id!r} is already used by case {ids[sc.id]}; give one an 'id:'",
                )
            ids[sc.id] = i
        cases += new
    seen: dict[str, SuiteCase] = {}
    for sc in cases:
        if sc.case.key in seen:
            first = seen[sc.case.key]
            raise w.fail(
                case_label(sc.entry, sc.id),
                f"measures the same thing as case {first.entry} ({first.id}): {sc.case.label()}",
            )
        seen[sc.case.key] = sc
    groups = parse_compare(w, data.get("compare"), cases)
    claims = parse_claims(w, data.get("claims"), set(ids))
    gate = parse_gate(w, data.get("gate"))
    slurm = parse_slurm(w, data.get("slurm"))
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
        slurm,
    )


def check_suite_cases(suite: Suite, *, source: str | None = None) -> None:
    """Let the builders judge every case (layers are built, models asked), naming the case."""
    from hilobench.run.engine import validate_case  # imports torch (~1.5 s)

    w = Where(source or str(suite.path or suite.name))
    for sc in suite.cases:
        try:
            validate_case(sc.case)
        except (ConfigError, ValueError) as e:
            raise w.fail(case_label(sc.entry, sc.id), str(e)) from None


def find_suite(spec: str | Path, root: Path | None = None) -> Path:
    """A suite path, or the name of a shipped suite (``ci_smoke`` → suites/ci_smoke.yaml)."""
    p = Path(spec)
    if p.is_file():
        return p
    for d in _suite_dirs(root):
        for cand in (d / f"{spec}.yaml", d / f"{spec}.yml", d / str(spec)):
            if cand.is_file():
                return cand
    stems = sorted(q.stem for d in _suite_dirs(root) for q in _yaml_files(d))
    raise ConfigError(
        f"suite {str(spec)!r} not found{did_you_mean(spec, stems)}; "
        f"give a suite file or a shipped suite: {', '.join(stems) or 'none'}"
    )


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
