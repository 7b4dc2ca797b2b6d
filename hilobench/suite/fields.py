"""The fields a suite case may set, the check of each value, and errors that say where.

Case fields map onto :class:`~hilobench.core.case.Case`, run settings onto
:class:`~hilobench.core.plan.SuiteCase`, and knobs come from the options table
(:mod:`hilobench.core.options`), which the layer and model registries extend with the knobs their
plug-ins declare. :class:`Where` builds the messages that name the file, the case and the field.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from hilobench.core import options
from hilobench.core.case import DTYPES, IMPLS, MAX_BATCH, MAX_BUDGET_S, SETTING_FIELDS, parse_hw
from hilobench.core.errors import ConfigError

#: Case fields that map onto :class:`Case` (besides the name and kind).
CASE_KEYS = (*SETTING_FIELDS, "budget")
#: Run settings that are not part of a measurement's identity.
RUN_KEYS = ("timeout", "count", "min_effect", "max_batch")
#: Keys of a ``cases:`` entry that are not settings.
ENTRY_KEYS = ("layer", "model", "id", "points")


class Where:
    """Builds error messages that name the file, the case and the field."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, problem: str, cls: type[ConfigError] = ConfigError) -> ConfigError:
        prefix = f"{self.source}: " + (f"{where}: " if where else "")
        return cls(prefix + problem)


def case_label(i: int, cid: str | None) -> str:
    """How messages name case entry ``i`` (1-based) with id ``cid``."""
    return f"case {i}" + (f" ({cid})" if cid else "")


def type_name(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    return (isinstance(v, int | float)) and not isinstance(v, bool) and math.isfinite(v)


def as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, list) else [v]


def expand_values(key: str, v: Any) -> list[Any]:
    """The values a field expands to: a list's items, ``both`` as its two values."""
    vals = as_list(v)
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


def check_value(key: str, v: Any) -> Any:
    """Check one scalar value of a case field or option; return it normalised.

    Raises ValueError with the problem (the caller adds file / case / field).
    """

    def want(ok: bool, what: str) -> None:
        if not ok:
            raise ValueError(f"expected {what}, got {v!r} ({type_name(v)})")

    if key in options.names():  # a knob: the options table checks it
        try:
            return options.check(key, v)
        except ConfigError as e:
            raise ValueError(str(e)) from None
    if key == "res":
        want(is_int(v) or isinstance(v, str), "N or 'HxW', e.g. 224 or 800x1280")
        try:
            h, w = parse_hw(v, key)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        return h if h == w and is_int(v) else f"{h}x{w}"
    if key == "batch":  # the bound of a --batch list (options.parse_batches)
        want(is_int(v) and 1 <= v <= MAX_BATCH, f"an integer in [1, {MAX_BATCH}]")
        return v
    if key == "threads":
        want(v is None or (is_int(v) and v >= 1), "an integer >= 1 or null")
        return v
    if key == "budget":  # the one budget rule of every case
        want(is_num(v) and 0 < v <= MAX_BUDGET_S, f"a number of seconds in (0, {MAX_BUDGET_S:g}]")
        return float(v)
    if key == "timeout":
        want(is_num(v) and v > 0, "a number of seconds > 0")
        return float(v)
    if key == "min_effect":
        want(is_num(v) and 0 < v < 10, "a relative slowdown > 0, e.g. 0.1 for 10%")
        return float(v)
    if key == "max_batch":  # the search of --max-batch; a suite says its limit
        want(
            isinstance(v, dict)
            and set(v) == {"mem_limit"}
            and isinstance(v["mem_limit"], str | int)
            and not isinstance(v["mem_limit"], bool),
            "a mapping {mem_limit: SIZE}, e.g. {mem_limit: 8GiB}",
        )
        from hilobench.run.maxbatch import parse_mem_limit  # light: no torch

        try:
            return parse_mem_limit(str(v["mem_limit"]))
        except ConfigError as e:
            raise ValueError(str(e)) from None
    if key in ("compile", "channels_last", "count"):
        want(isinstance(v, bool), "true or false")
        return v
    if key == "dtype":
        want(v in DTYPES, f"one of {', '.join(DTYPES)}")
        return v
    if key == "backend":
        want(v in options.BACKENDS, f"one of {', '.join(options.BACKENDS)}")
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


def check_field(w: Where, where: str, key: str, v: Any) -> None:
    """Check every value a field expands to, naming the field in the error."""
    label = (f"{where}: " if where else "") + f"field {key!r}"
    try:
        for x in expand_values(key, v):
            check_value(key, x)
    except ValueError as e:
        raise w.fail(label, str(e)) from None


def attentions() -> list[str]:
    """The attention registry's names (loading it lets plug-ins declare their knobs)."""
    from hilobench.attention import available_attentions  # imports torch (~1.5 s)

    return available_attentions()


def model_entries() -> dict[str, Any]:
    """The model registry's entries by name; ValueError where models cannot be loaded."""
    try:
        from hilobench.models import available_models  # imports torch (~1.5 s)
    except ImportError as e:  # the models package is optional for layer-only suites
        raise ValueError(f"models are unavailable here ({e})") from None
    return {m.name: m for m in available_models()}


def knob_names(kind: str | None, keys: Iterable[Any]) -> tuple[str, ...]:
    """Knob names of ``kind`` (None: both kinds). A key the table lacks may be a knob that a
    plug-in declares, so the registries are loaded (they import torch) before it is unknown."""
    fields = CASE_KEYS + RUN_KEYS + ENTRY_KEYS + options.names()
    if any(k not in fields for k in keys):
        attentions()
        try:
            model_entries()
        except ValueError:
            pass  # no models here: their knobs cannot be declared either
    return options.names(kind)


def takes(kind: str, name: str, key: str) -> bool:
    """Whether ``name`` takes field ``key`` (case fields and run settings fit every case)."""
    return key not in options.names(kind) or options.takes(kind, name, key)
