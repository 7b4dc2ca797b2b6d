"""Measured profile → the three views a person reads: module tree, kinds, operators.

Each view is a list of :class:`Part`. The *leaf* parts of a view tile the step: in the module
tree, a node shown with its children adds an ``(own code)`` row for the time spent in its own
``forward`` outside them, and the parts that are no module (optimizer, loss, autograd's own
work, unattributed time) close the list; so leaves always sum to the profiled step time, and
the check that matters is that sum against the step timed without the profiler.

A module's *kind* (the kinds view) is its role: for a model, the outermost module of a known
type decides (patch embed, token merging, attention, FFN, norms, head), so a norm inside the
token merging counts as token merging; for a single layer, the layer's ``profile_parts``
(HiLo: Hi-Fi qkv, Hi-Fi attention, Lo-Fi pooling, ...) or else its children's names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from hilobench.profile.attribute import (
    AUTOGRAD_OTHER,
    BACKWARD,
    FORWARD,
    NOT_IN_OP,
    OPTIMIZER,
    OUTSIDE,
    UNATTRIBUTED,
    Attribution,
)
from hilobench.profile.capture import Measured

#: How far the parts' sum may stray from the step timed without the profiler.
TOLERANCE = 0.05
#: Parts that are no module, in the order they close the module view.
SPECIAL = (OUTSIDE, AUTOGRAD_OTHER, OPTIMIZER, UNATTRIBUTED)

#: Kinds of model modules by class name (timm's spellings included).
KIND_BY_TYPE = {
    "PatchEmbed": "patch embed",
    "DeformableTokenMerging": "token merging (DTM)",
    "PatchMerging": "token merging (DTM)",
    "ConvFFN": "FFN",
    "Mlp": "FFN",
    "LayerNorm": "norms",
    "BatchNorm2d": "norms",
    "GroupNorm": "norms",
    "ClassifierHead": "head",
}
#: Profiler operator name (namespace dropped) → the traced count's name for the same operator.
OP_ALIASES = {"conv1d": "conv", "conv2d": "conv", "conv3d": "conv", "_convolution": "conv"}


@dataclass
class Part:
    """One row of a view. Times are seconds per step; ``share`` is of the profiled step."""

    name: str
    key: str
    depth: int
    leaf: bool
    forward_s: float
    backward_s: float
    time_s: float
    share: float
    macs: int | None = None
    params: int | None = None
    peak_mem_bytes: int | None = None
    macs_per_s: float | None = None
    device_s: float | None = None
    calls: float | None = None


@dataclass
class Breakdown:
    """One case's profile, every number per step."""

    case: dict[str, Any]
    label: str
    device: str
    mode: str
    threads: int
    steps: int
    step_s: float
    step_samples: list[float]
    profiled_step_s: float
    parts_sum_s: float
    residual: float
    tolerance: float
    modules: list[Part] = field(default_factory=list)
    kinds: list[Part] = field(default_factory=list)
    ops: list[Part] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    #: CUDA: kernel seconds per profiled step, and their share of it (None on the CPU)
    kernel_s: float | None = None
    device_busy: float | None = None

    @property
    def within_tolerance(self) -> bool:
        return abs(self.residual) <= self.tolerance

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["within_tolerance"] = self.within_tolerance
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Breakdown:
        """A breakdown as ``to_json`` wrote it (``profile.json`` holds a list of them)."""
        fields = {k: v for k, v in data.items() if k != "within_tolerance"}
        for view in ("modules", "kinds", "ops"):
            fields[view] = [Part(**p) for p in fields.get(view, [])]
        return cls(**fields)


def _depth(name: str) -> int:
    return 0 if not name else name.count(".") + 1


def _parent(name: str) -> str | None:
    return None if not name else name.rpartition(".")[0]


class _Tree:
    """Per-module numbers of one measured case, own and inclusive."""

    def __init__(self, m: Measured) -> None:
        self.m = m
        a = m.attribution
        self.total = a.total_s
        self.modules: dict[str, nn.Module] = dict(m.subject.module.named_modules())
        self.children: dict[str, list[str]] = {n: [] for n in self.modules}
        for n in self.modules:
            p = _parent(n)
            if p is not None and p in self.children:
                self.children[p].append(n)
        self.own = {n: a.parts.get(n, {}) for n in self.modules}
        self.incl: dict[str, tuple[float, float]] = {}
        self.device_own = {n: a.device.get(n, 0.0) for n in self.modules}
        self.device_incl: dict[str, float] = {}
        self._sum("")

    def _sum(self, n: str) -> tuple[float, float]:
        f, b = self.own[n].get(FORWARD, 0.0), self.own[n].get(BACKWARD, 0.0)
        d = self.device_own[n]
        for c in self.children[n]:
            cf, cb = self._sum(c)
            f, b, d = f + cf, b + cb, d + self.device_incl[c]
        self.incl[n] = (f, b)
        self.device_incl[n] = d
        return f, b

    def part(self, n: str, name: str, depth: int, leaf: bool, own: bool = False) -> Part:
        m = self.m
        if own:
            f = self.own[n].get(FORWARD, 0.0)
            b = self.own[n].get(BACKWARD, 0.0)
            macs = self.own_macs(n)
            params = sum(p.numel() for p in self.modules[n].parameters(recurse=False))
            peak, dev = None, self.device_own[n]
        else:
            f, b = self.incl[n]
            macs = m.macs.get(n)
            params = sum(p.numel() for p in self.modules[n].parameters())
            peak, dev = m.peaks.get(n), self.device_incl[n]
        return _make(name, n, depth, leaf, f, b, self.total, macs, params, peak, dev, m)

    def own_macs(self, n: str) -> int | None:
        if n not in self.m.macs:
            return None
        return self.m.macs[n] - sum(self.m.macs.get(c, 0) for c in self.children[n])


def _make(
    name: str,
    key: str,
    depth: int,
    leaf: bool,
    f: float,
    b: float,
    total: float,
    macs: int | None,
    params: int | None,
    peak: int | None,
    dev: float | None,
    m: Measured,
    extra: float = 0.0,
) -> Part:
    t = f + b + extra
    rate = macs / f if macs and f > 0 else None
    cuda = dev if m.case.device.startswith("cuda") else None
    share = t / total if total > 0 else 0.0
    return Part(name, key, depth, leaf, f, b, t, share, macs, params, peak, rate, cuda)


def _special_parts(m: Measured, total: float) -> list[Part]:
    out = []
    for label in SPECIAL:
        ph = m.attribution.parts.get(label)
        if not ph:
            continue
        f, b = ph.get(FORWARD, 0.0), ph.get(BACKWARD, 0.0)
        rest = sum(v for k, v in ph.items() if k not in (FORWARD, BACKWARD))
        dev = m.attribution.device.get(label, 0.0)
        out.append(_make(label, label, 0, True, f, b, total, None, None, None, dev, m, rest))
    return out


def module_view(m: Measured, depth: int) -> list[Part]:
    """The module tree down to ``depth`` (0: the whole module in one row), then the parts that
    are no module."""
    tree = _Tree(m)
    root_name = f"{m.case.name} ({type(m.subject.module).__name__})"
    rows: list[Part] = []

    def visit(n: str, d: int) -> None:
        shown = [c for c in tree.children[n] if d < depth]
        label = root_name if not n else f"{n.rpartition('.')[2]} ({type(tree.modules[n]).__name__})"
        rows.append(tree.part(n, label, d, leaf=not shown))
        for c in shown:
            visit(c, d + 1)
        if shown and sum(tree.own[n].values()) > 0:
            rows.append(tree.part(n, "(own code)", d + 1, leaf=True, own=True))

    visit("", 0)
    return rows + _special_parts(m, tree.total)


def kind_of(m: Measured) -> dict[str, str]:
    """Each module's kind (see the module docstring)."""
    root = m.subject.module
    modules = dict(root.named_modules())
    named_parts: dict[str, str] = dict(getattr(root, "profile_parts", None) or {})
    is_layer = m.case.kind == "layer"
    kinds: dict[str, str] = {}
    for n, mod in modules.items():  # parents come before their children
        cls = type(mod).__name__
        p = _parent(n)
        inherited = kinds.get(p) if p is not None else None
        if not n:
            kinds[n] = f"{cls} own code"
        elif is_layer and p == "":
            kinds[n] = named_parts[n] if n in named_parts else n
        elif is_layer or (inherited is not None and not inherited.endswith(" own code")):
            kinds[n] = inherited or n
        elif cls in KIND_BY_TYPE:
            kinds[n] = KIND_BY_TYPE[cls]
        elif _is_attention(mod):
            kinds[n] = "attention"
        else:
            kinds[n] = f"{cls} own code"
    return kinds


def _is_attention(mod: nn.Module) -> bool:
    from hilobench.attention import Attention  # loaded already: the case was built

    return isinstance(mod, Attention) or "Attention" in type(mod).__name__


def kind_view(m: Measured) -> list[Part]:
    """Time, MACs, parameters and peak memory per kind, then the parts that are no module."""
    tree = _Tree(m)
    kinds = kind_of(m)
    order: list[str] = []
    acc: dict[str, dict[str, Any]] = {}
    for n in tree.modules:
        k = kinds[n]
        if k not in acc:
            order.append(k)
            acc[k] = {"f": 0.0, "b": 0.0, "macs": 0, "params": 0, "peak": None, "dev": 0.0}
        a = acc[k]
        a["f"] += tree.own[n].get(FORWARD, 0.0)
        a["b"] += tree.own[n].get(BACKWARD, 0.0)
        a["dev"] += tree.device_own[n]
        a["macs"] += tree.own_macs(n) or 0
        a["params"] += sum(p.numel() for p in tree.modules[n].parameters(recurse=False))
        if n in m.peaks and not k.endswith(" own code"):  # a container's peak is its content's
            a["peak"] = max(a["peak"] or 0, m.peaks[n])
    order = [k for k in order if acc[k]["f"] + acc[k]["b"] or acc[k]["macs"] or acc[k]["params"]]
    rows = [
        _make(k, k, 0, True, acc[k]["f"], acc[k]["b"], tree.total, acc[k]["macs"],
              acc[k]["params"], acc[k]["peak"], acc[k]["dev"], m)
        for k in order
    ]  # fmt: skip
    rows.sort(key=lambda p: -p.time_s)
    return rows + _special_parts(m, tree.total)


def op_view(m: Measured, top: int = 15) -> list[Part]:
    """Operators (forward ops, autograd nodes, optimizer steps) by time; the rest in one row."""
    a = m.attribution
    total = a.total_s
    named = sorted(((k, v) for k, v in a.ops.items() if k != NOT_IN_OP), key=lambda kv: -kv[1])
    rows = []
    for name, t in named[:top]:
        bare = name.rpartition("::")[2]
        macs = m.macs_by_op.get(OP_ALIASES.get(bare, bare)) if "::" in name else None
        ph = a.op_phase.get(name, FORWARD)
        f, b, rest = (
            (t, 0.0, 0.0) if ph == FORWARD else (0.0, t, 0.0) if ph == BACKWARD else (0, 0, t)
        )
        p = _make(name, name, 0, True, f, b, total, macs, None, None, None, m, rest)
        p.calls = round(a.op_calls.get(name, 0.0), 2)
        rows.append(p)
    others = named[top:]
    if others:
        f = sum(t for k, t in others if a.op_phase.get(k) == FORWARD)
        b = sum(t for k, t in others if a.op_phase.get(k) == BACKWARD)
        rest = sum(t for _, t in others) - f - b
        rows.append(_make(f"{len(others)} other operators", "", 0, True, f, b, total, None,
                          None, None, None, m, rest))  # fmt: skip
    if NOT_IN_OP in a.ops:
        rows.append(_make(NOT_IN_OP, NOT_IN_OP, 0, True, a.ops[NOT_IN_OP], 0.0, total, None,
                          None, None, None, m))  # fmt: skip
    return rows


def build(m: Measured, depth: int) -> Breakdown:
    """All three views of one measured case, and the check of their sum against the step."""
    modules = module_view(m, depth)
    parts_sum = sum(p.time_s for p in modules if p.leaf)
    return Breakdown(
        case=m.case.to_json(),
        label=m.case.label(),
        device=m.case.device,
        mode=m.case.mode,
        threads=m.threads,
        steps=m.attribution.steps,
        step_s=m.step_s,
        step_samples=m.step_samples,
        profiled_step_s=m.attribution.total_s,
        parts_sum_s=parts_sum,
        residual=parts_sum / m.step_s - 1 if m.step_s > 0 else 0.0,
        tolerance=TOLERANCE,
        modules=modules,
        kinds=kind_view(m),
        ops=op_view(m),
        files={"trace": str(m.trace_path)} if m.trace_path else {},
        **device_summary(m.attribution, m.case.device),
    )


def device_summary(a: Attribution, device: str) -> dict[str, float | None]:
    """On CUDA, the kernel time of a profiled step (every kernel charged to the part whose
    operator launched it) and its share of the step: what is left is the device waiting on
    launches, Python and the final synchronisation. Nothing on the CPU."""
    if not device.startswith("cuda"):
        return {}
    kernel_s = sum(a.device.values())
    return {"kernel_s": kernel_s, "device_busy": kernel_s / a.total_s if a.total_s > 0 else None}
