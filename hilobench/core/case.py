"""Case: the full, hashable description of one measurement.

Everything that changes a number is part of the identity (``key``); how long we spend
measuring (``budget``) is not, so a re-measurement matches its baseline.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from hilobench.core.errors import ConfigError, unknown

KINDS = ("layer", "model")
MODES = ("infer", "train")
#: Dtype names; hilobench.measure.dtypes maps them to torch dtypes.
DTYPES = ("float32", "tf32", "bfloat16", "float16")
DEVICES = ("cpu", "cuda")
#: The two implementations of every attention: the published formulation and the fused kernel.
#: The settings of a measurement besides what is measured (kind, name, options) and its budget:
#: a compare group shares them, a suite case may set each one.
SETTING_FIELDS = (
    "res", "batch", "device", "dtype", "impl", "mode", "threads", "compile", "backend",
    "channels_last",
)  # fmt: skip
IMPLS = ("reference", "fused")
#: The implementation measured when none is named: the fused kernel (scaled_dot_product_attention;
#: for a timm model, timm's own setting), as people run these models. ``reference`` is the
#: published formulation, the one the paper suites name.
DEFAULT_IMPL = "fused"

#: Image-to-token scale at which the paper benchmarks a single layer (stage 3 of a 4-stage net).
LAYER_SCALE = 16
#: Longest budget one case may have, in seconds: a budget is a cap, and a cap must end.
MAX_BUDGET_S = 3600.0


def check_budget(value: object, what: str = "budget") -> float:
    """A budget in seconds: a finite number in (0, MAX_BUDGET_S]; ConfigError otherwise."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    x = float(value) if ok else math.nan  # type: ignore[arg-type]
    if not (math.isfinite(x) and 0 < x <= MAX_BUDGET_S):
        raise ConfigError(
            f"{what} must be a number of seconds in (0, {MAX_BUDGET_S:g}], got {value!r}"
        )
    return x


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_threads(threads: int | None) -> None:
    """Refuse more threads than this machine lets the process use."""
    n = usable_cores()
    if threads is not None and not 1 <= threads <= n:
        raise ConfigError(
            f"threads must be between 1 and {n} (the cores usable here), got {threads}"
        )


def parse_hw(
    text: str | int | tuple[int, int] | list[int], what: str = "resolution"
) -> tuple[int, int]:
    """Parse ``N`` or ``HxW`` (height first): ``"800x1280"`` → (800, 1280)."""
    if isinstance(text, (tuple, list)) and len(text) == 2:
        h, w = text
    elif isinstance(text, int) and not isinstance(text, bool):
        h = w = text
    else:
        s = str(text).strip().lower()
        parts = s.split("x")
        try:
            if len(parts) == 1:
                h = w = int(parts[0])
            elif len(parts) == 2:
                h, w = int(parts[0]), int(parts[1])
            else:
                raise ValueError
        except ValueError:
            raise ConfigError(
                f"bad {what} {text!r}; expected N or HxW, e.g. 224 or 800x1280"
            ) from None
    if not (isinstance(h, int) and isinstance(w, int)) or h < 1 or w < 1:
        raise ConfigError(f"bad {what} {text!r}; both sides must be positive integers")
    return int(h), int(w)


def check_impl(impl: object) -> str:
    """The one check of an implementation name (cases, layers, models)."""
    if impl not in IMPLS:
        raise unknown("impl", impl, IMPLS)
    return str(impl)


def expand_impls(impl: object) -> list[str]:
    """``both`` → both implementations; anything else must be one of them."""
    if impl == "both":
        return list(IMPLS)
    if impl not in IMPLS:
        raise unknown("impl", impl, (*IMPLS, "both"))
    return [str(impl)]


def fmt_hw(hw: tuple[int, int]) -> str:
    return f"{hw[0]}" if hw[0] == hw[1] else f"{hw[0]}x{hw[1]}"


@dataclass(frozen=True)
class Case:
    """One measurement. ``options`` holds the layer/model knobs as sorted (key, value) pairs;
    the knobs and who takes them are in :mod:`hilobench.core.options`."""

    kind: str
    name: str
    res: tuple[int, int] = (224, 224)
    batch: int = 64
    device: str = "cpu"
    dtype: str = "float32"
    impl: str = "reference"
    mode: str = "infer"
    threads: int | None = None
    compile: bool = False
    channels_last: bool = False
    #: the runtime (hilobench.core.options.BACKENDS); ``compile`` is the flag of backend "compile"
    backend: str = "eager"
    options: tuple[tuple[str, Any], ...] = ()
    budget: float = field(default=5.0, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise unknown("kind", self.kind, KINDS)
        if self.mode not in MODES:
            raise unknown("mode", self.mode, MODES)
        if self.dtype not in DTYPES:
            raise unknown("dtype", self.dtype, DTYPES)
        if self.device.split(":")[0] not in DEVICES:
            raise unknown("device", self.device, DEVICES)
        check_impl(self.impl)
        if not isinstance(self.backend, str) or not self.backend:
            raise ConfigError(f"backend must be a name, got {self.backend!r}")
        if self.compile and self.backend not in ("eager", "compile"):
            raise ConfigError(f"compile and backend {self.backend!r} exclude each other")
        if self.compile or self.backend == "compile":
            object.__setattr__(self, "compile", True)
            object.__setattr__(self, "backend", "compile")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise ConfigError(f"batch must be an integer >= 1, got {self.batch!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ConfigError(f"threads must be an integer >= 1, got {self.threads!r}")
        object.__setattr__(self, "budget", check_budget(self.budget))
        object.__setattr__(self, "res", parse_hw(self.res))
        object.__setattr__(self, "options", tuple(sorted(dict(self.options).items())))

    @property
    def opts(self) -> dict[str, Any]:
        return dict(self.options)

    def with_(self, **changes: Any) -> Case:
        return replace(self, **changes)

    def identity(self) -> dict[str, Any]:
        """The fields that define what is measured (JSON-ready)."""
        d = asdict(self)
        d.pop("budget")
        if self.backend in ("eager", "compile"):  # said by ``compile``: keys stay as they were
            d.pop("backend")
        d["res"] = list(self.res)
        d["options"] = {k: v for k, v in self.options}
        return d

    @property
    def key(self) -> str:
        """Stable short id: equal cases on any machine get the same key."""
        blob = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    def label(self) -> str:
        """Short human label, e.g. ``hilo/fused 224 b64``."""
        extra = ",".join(f"{k}={v}" for k, v in self.options if k not in ("dim", "heads"))
        s = f"{self.name}/{self.impl} {fmt_hw(self.res)} b{self.batch} {self.dtype} {self.mode}"
        s += f" {self.backend}" if self.backend != "eager" else ""
        return s + (f" [{extra}]" if extra else "")

    def to_json(self) -> dict[str, Any]:
        d = self.identity()
        d["budget"] = self.budget
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Case:
        d = dict(d)
        d["res"] = tuple(d["res"])
        d["options"] = tuple(sorted(d.get("options", {}).items()))
        d.setdefault("backend", "eager")
        return cls(**d)


#: Largest batch a list may name: far past any real batch, small enough that a typo cannot ask
#: for a tensor of 2**63 elements.
MAX_BATCH = 1 << 20


def parse_batches(text: str | int) -> list[int]:
    """``--batch 1,8,64`` → [1, 8, 64]: the one parser of a batch list (``layer``, ``model`` and
    any command that sweeps batches), as ``--res`` takes a list of resolutions. Repeats are
    dropped, order is kept; ConfigError naming the bad item and what is allowed otherwise."""
    items = [p.strip() for p in str(text).split(",")]
    if not any(items):
        raise ConfigError(f"bad batch {text!r}; expected integers >= 1, e.g. 64 or 1,8,64")
    out: list[int] = []
    for item in items:
        if not (item.isascii() and item.isdigit()) or not 1 <= int(item) <= MAX_BATCH:
            raise ConfigError(
                f"bad batch {item!r} in {str(text)!r}; each batch must be an integer in "
                f"[1, {MAX_BATCH}], e.g. 64 or 1,8,64"
            )
        if int(item) not in out:
            out.append(int(item))
    return out
