"""The one table of layer and model knobs, and who takes each one.

A knob is declared once, as a :class:`Knob`: its name (the CLI flag, the suite field and the
Case option), its type and check, the builder argument it feeds, its default and its help. The
built-in knobs are declared here; a knob that only a plug-in attention has is declared in that
attention's file, in its ``@register_attention(knobs=...)`` line. The registries record here
which attentions and models take which knobs as they register them.

Read from this table: the flags of ``hilobench layer`` and the knob flags of ``hilobench model``
(``cli/caseopts.py``), the validation of suite fields (``suite/fields.py``), the keyword
arguments that ``run.engine.build_subject`` passes to the builders, and the registries' knob
lists.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any, Literal

# the runtimes' table lives apart; callers read it as options.BACKENDS
from hilobench.core.backend_table import BACKENDS as BACKENDS
from hilobench.core.backend_table import Backend as Backend
from hilobench.core.case import parse_hw
from hilobench.core.errors import ConfigError, unknown

Kind = Literal["layer", "model"]
KnobType = Literal["int", "float", "bool", "str", "hw"]

#: What each kind of taker is called in messages.
NOUNS: dict[str, str] = {"layer": "attention", "model": "model"}
#: Python type of each knob type, as the CLI parses it (``hw`` is a token map, ``N`` or ``HxW``).
PY_TYPES: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str, "hw": str}
#: Names a knob cannot have: case fields, run settings and the commands' own options.
RESERVED = frozenset(
    "layer model id points res batch device dtype impl mode threads compile backend channels_last "
    "budget timeout count min_effect names list list_ train roofline out out_dir format fmt append "
    "help version max_batch mem_limit wide columns".split()
)


class KnobError(ConfigError):
    """A knob that cannot be used as given; ``key`` names it, so a suite can point at the field."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Knob:
    """One knob. ``arg`` is the builder argument it feeds ("" means the knob's own name, None
    that no builder takes it: ``tokens`` shapes the input). ``every`` knobs apply to every
    attention (dim, heads, tokens); the others only to those that register them. ``choices``
    is a tuple, or a function returning the names allowed now (e.g. the attentions)."""

    name: str
    type: KnobType
    help: str
    kinds: tuple[Kind, ...] = ("layer",)
    arg: str | None = ""
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | Callable[[], Sequence[str]] | None = None
    every: bool = False

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or not self.name.islower():
            raise ValueError(f"knob name {self.name!r} must be a lower-case identifier")
        if self.name in RESERVED:
            raise ValueError(f"knob name {self.name!r} is taken by a case field or a command")
        if self.type not in PY_TYPES:
            raise ValueError(f"knob {self.name!r}: unknown type {self.type!r}")
        if not self.kinds or not set(self.kinds) <= set(NOUNS):
            raise ValueError(f"knob {self.name!r}: kinds must be among {', '.join(NOUNS)}")
        if self.type == "bool" and not isinstance(self.default, bool):
            raise ValueError(f"knob {self.name!r}: a bool knob needs a true/false default")
        if self.arg == "":
            object.__setattr__(self, "arg", self.name)

    @property
    def flag(self) -> str:
        """The CLI spelling, e.g. ``--rel-pos``."""
        return "--" + self.name.replace("_", "-")

    def spelled(self, value: object) -> str:
        """The flag as a command line sets ``value``: ``--no-rel-pos`` for rel_pos false."""
        return f"--no-{self.flag[2:]}" if self.type == "bool" and value is False else self.flag

    def allowed(self) -> list[str]:
        """The values a choice knob accepts now."""
        c = self.choices
        return list(c() if callable(c) else c or ())

    def expects(self) -> str:
        """What a valid value looks like, for messages."""
        if self.type == "bool":
            return "true or false"
        if self.type == "hw":
            return "N or HxW, e.g. 14 or 14x20"
        if self.type == "str":
            return f"one of {', '.join(self.allowed())}" if self.choices else "a string"
        what = "an integer" if self.type == "int" else "a number"
        lo, hi = self.minimum, self.maximum
        if lo is not None and hi is not None:
            return f"{what} in [{_num(lo)}, {_num(hi)}]"
        if lo is not None:
            return f"{what} >= {_num(lo)}"
        if hi is not None:
            return f"{what} <= {_num(hi)}"
        return what

    def check(self, value: object, label: str | None = None) -> Any:
        """``value`` checked and normalised (numbers of a float knob become float, token maps
        ``"HxW"``); ConfigError naming ``label`` (default: the knob) and what is allowed."""
        label = label or self.name
        if self.type == "str" and self.choices:
            allowed = self.allowed()
            if value not in allowed:
                raise unknown(label, value, allowed)
            return value
        number = isinstance(value, Real) and not isinstance(value, bool)
        if self.type == "bool" and isinstance(value, bool):
            return value
        if self.type == "str" and isinstance(value, str):
            return value
        if self.type == "hw" and (isinstance(value, (int, str)) and not isinstance(value, bool)):
            h, w = parse_hw(value, label)
            return f"{h}x{w}"
        if self.type == "int" and number and isinstance(value, int) and self._in_range(value):
            return value
        if self.type == "float" and isinstance(value, Real) and number:
            x = float(value)
            if math.isfinite(x) and self._in_range(x):
                return x
        raise ConfigError(f"{label} must be {self.expects()}, got {value!r}")

    def _in_range(self, v: float) -> bool:
        return (self.minimum is None or v >= self.minimum) and (
            self.maximum is None or v <= self.maximum
        )


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _attention_names() -> list[str]:
    """The attentions registered so far: each registers its knobs here (``take``), so the
    table knows them without importing the attention package (which imports this module)."""
    return sorted(_TAKERS["layer"])


#: The built-in knobs, in the order the CLI lists them.
BUILTIN: tuple[Knob, ...] = (
    Knob("tokens", "hw", "Token map HxW (bypasses the 1/16 image scale).", arg=None, every=True),
    # upper bounds far past any vision model (ViT-22B: 6144 channels, 48 heads) that keep a
    # mistyped value from overflowing a tensor size
    Knob("dim", "int", "Channels.", default=768, minimum=1, maximum=65536, every=True),
    Knob(
        "heads",
        "int",
        "Attention heads.",
        arg="num_heads",
        default=12,
        minimum=1,
        maximum=1024,
        every=True,
    ),  # fmt: skip
    Knob(
        "alpha",
        "float",
        "HiLo: share of heads in Lo-Fi, in [0, 1] (LITv2: of stage 3).",
        kinds=("layer", "model"),
        minimum=0,
        maximum=1,
    ),
    Knob(
        "window",
        "int",
        "Window size: HiLo's s, the Swin / Twins window (LITv2: of stage 3).",
        kinds=("layer", "model"),
        minimum=1,
    ),
    Knob("sr", "int", "Spatial reduction ratio of SRA / GSA.", arg="sr_ratio", minimum=1),
    Knob("rel_pos", "bool", "Relative position bias of window attention.", default=True),
    Knob(
        "attn",
        "str",
        "LITv2: the stage-3 attention; PVT: of stages 1-3 (layer options reach them).",
        kinds=("model",),
        choices=_attention_names,
    ),
    Knob(
        "dtm",
        "str",
        "Token merging: deform (the paper's) or conv.",
        kinds=("model",),
        default="deform",
        choices=("deform", "conv"),
    ),
    Knob(
        "head",
        "str",
        "Dense-prediction head over the backbone's four stages, timed with its FPN neck and "
        "post-processing (paper inputs: --res 800x1280 detection, 512 segmentation).",
        kinds=("model",),
        arg=None,  # not a backbone argument: bench builds the dense model around the backbone
        default="none",
        choices=("none", "retinanet", "maskrcnn", "semfpn"),
    ),
    Knob(
        "cuda_graphs",
        "bool",
        "CUDA, inference: capture the step once as a CUDA graph and time its replays (no "
        "launch overhead).",
        kinds=("layer", "model"),
        arg=None,  # not a builder argument: bench captures the step (measure/graphs.py)
        default=False,
        every=True,
    ),
)


_KNOBS: dict[str, Knob] = {k.name: k for k in BUILTIN}
#: kind → taker (attention or model name) → {knob name: the taker's default, None if unknown}
_TAKERS: dict[str, dict[str, dict[str, Any]]] = {"layer": {}, "model": {}}


def declare(knob: Knob) -> Knob:
    """Add ``knob`` to the table; declaring the same knob again is a no-op, another knob of
    the same name an error."""
    have = _KNOBS.get(knob.name)
    if have is not None and have != knob:
        raise ValueError(f"knob {knob.name!r} is already declared differently")
    _KNOBS.setdefault(knob.name, knob)
    return _KNOBS[knob.name]


def get(name: str) -> Knob:
    """The knob called ``name``; KeyError if there is none."""
    return _KNOBS[name]


def knobs(kind: str | None = None) -> list[Knob]:
    """Knobs of ``kind`` (all when None), in declaration order."""
    return [k for k in _KNOBS.values() if kind is None or of_kind(k, kind)]


def of_kind(knob: Knob, kind: str) -> bool:
    """Whether ``knob`` is set on a ``kind``: its own kinds, and for a model every layer knob
    but dim / heads / tokens, for its swapped layers (``--attn cswin --split-size 7``)."""
    return kind in knob.kinds or (kind == "model" and "layer" in knob.kinds and not knob.every)


def names(kind: str | None = None) -> tuple[str, ...]:
    """Names of the knobs of ``kind`` (all when None), in declaration order."""
    return tuple(k.name for k in knobs(kind))


def check(name: str, value: object, label: str | None = None) -> Any:
    """Check ``value`` of knob ``name`` (see :meth:`Knob.check`)."""
    return _KNOBS[name].check(value, label)


def take(kind: Kind, taker: str, given: Mapping[str | Knob, Any]) -> dict[str, Any]:
    """Record that ``taker`` takes the knobs in ``given`` (name or new Knob → its default);
    replaces what ``taker`` took before. Returns {knob name: default}."""
    taken: dict[str, Any] = {}
    for key, default in given.items():
        knob = declare(key) if isinstance(key, Knob) else _KNOBS.get(key)
        if knob is None or not of_kind(knob, kind):
            known = ", ".join(k.name for k in knobs(kind) if not k.every)
            raise ValueError(f"{NOUNS[kind]} {taker!r}: unknown knob {key!r}; known: {known}")
        if knob.every:
            raise ValueError(f"{NOUNS[kind]} {taker!r}: every {NOUNS[kind]} takes {knob.name!r}")
        taken[knob.name] = default
    _TAKERS[kind][taker] = taken
    return dict(taken)


def takes(kind: str, taker: str, name: str) -> bool:
    """Whether ``taker`` takes knob ``name`` (every attention takes dim, heads and tokens)."""
    knob = _KNOBS.get(name)
    if knob is None or not of_kind(knob, kind):
        return False
    taken = _TAKERS[kind].get(taker, {})  # a layer knob reaches a model's swapped layers:
    return knob.every or name in taken or (kind not in knob.kinds and "attn" in taken)


def takers(kind: str, name: str) -> list[str]:
    """Who takes knob ``name``, of those registered so far, sorted."""
    return sorted(t for t in _TAKERS[kind] if takes(kind, t, name) and not _KNOBS[name].every)


def not_taken(kind: str, who: Sequence[str], name: str, shown: str | None = None) -> KnobError:
    """The one-line refusal of knob ``name`` for ``who``, naming those that take it."""
    verb = "takes" if len(who) == 1 else "take"
    that_do = ", ".join(takers(kind, name)) or "none"
    return KnobError(
        name, f"{', '.join(who)} {verb} no {shown or name}; {NOUNS[kind]}s that do: {that_do}"
    )


def check_taken(
    kind: str,
    who: Sequence[str],
    given: Iterable[str],
    spell: Callable[[str], str] | None = None,
) -> None:
    """Refuse a knob that none of ``who`` takes (one that some take applies to those)."""
    for name in given:
        if not any(takes(kind, t, name) for t in who):
            raise not_taken(kind, who, name, spell(name) if spell else None)


def check_together(kind: str, values: Mapping[str, Any]) -> None:
    """Checks across knobs: the heads of a layer must divide its channels."""
    if kind != "layer":
        return
    dim = values.get("dim", _KNOBS["dim"].default)
    heads = values.get("heads", _KNOBS["heads"].default)
    if isinstance(dim, int) and isinstance(heads, int) and heads > 0 and dim % heads:
        raise KnobError("heads", f"heads={heads} does not divide dim={dim}")


def given(values: Mapping[str, Any]) -> dict[str, Any]:
    """The knob values a command line set, checked: None is unset, and a knob other than
    dim / heads / tokens left at its default (``--rel-pos``, ``--dtm deform``) is unset too,
    so it changes no case key and is refused nowhere (an every-layer switch such as
    ``--cuda-graphs`` too: off is unset)."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        knob = _KNOBS[name]
        if value is None or ((not knob.every or knob.type == "bool") and value == knob.default):
            continue
        out[name] = knob.check(value, knob.spelled(value))
    return out


def taken(kind: str, taker: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``values`` that ``taker`` takes."""
    return {k: v for k, v in values.items() if takes(kind, taker, k)}


def builder_kwargs(kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Case options → builder keyword arguments (``sr`` → ``sr_ratio``), with the defaults of
    the knobs every attention takes filled in. ConfigError for an option no knob has."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        knob = _KNOBS.get(name)
        if knob is None or not of_kind(knob, kind):
            raise ConfigError(f"unknown {kind} option {name!r}; known: {', '.join(names(kind))}")
        if value is not None and knob.arg is not None:
            out[knob.arg] = value
    for knob in knobs(kind):
        if knob.every and knob.arg is not None and knob.default is not None:
            out.setdefault(knob.arg, knob.default)
    return out


def by_arg(kind: str, arg: str) -> Knob | None:
    """The knob of ``kind`` that feeds builder argument ``arg``."""
    return next((k for k in knobs(kind) if k.arg == arg), None)


def help_text(kind: str, knob: Knob) -> str:
    """The knob's help plus who takes it (with their defaults), as far as they registered."""
    if knob.every:
        return knob.help
    shown = []
    for t in takers(kind, knob.name):
        d = _TAKERS[kind][t].get(knob.name)
        shown.append(t if d is None or isinstance(d, bool) else f"{t} {d}")
    return knob.help + (f" Taken by: {', '.join(shown)}." if shown else "")


def check_map_knobs(values: dict[str, Any], hw: tuple[int, int], where: str = "") -> None:
    """A window or a reduction ratio no larger than the token map it acts on (its longer side):
    a larger one only pads the map (HiLo), sizes tables by its square (Swin) or leaves no keys
    (SRA), and can ask for terabytes."""
    for k in ("window", "sr"):
        v = values.get(k)
        if isinstance(v, int) and v > max(hw):
            raise KnobError(
                k,
                f"{k}={v} is larger than the {hw[0]}x{hw[1]} token map{where}; "
                f"{k} must be at most {max(hw)}, the map's longer side",
            )
