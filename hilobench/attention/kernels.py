"""``fused`` means the fastest exact eager path: per attention shape and device, whichever of
two exact kernels is faster, ``scaled_dot_product_attention`` or the plain
``softmax(q·kᵀ·scale + mask)·v`` matmuls.

SDPA is not always the faster one: over many tiny 7x7 windows on a CPU its per-call overhead
loses to two batched matmuls (W-MSA at 14x14 tokens measured 0.93x the plain path). So the
first step of a case (:func:`decide`, called before its memory pass and timing) times both
kernels on the layer's own q, k, v, a few milliseconds per shape, and keeps the faster one for
that shape; the choice is cached per machine like the roofline's GEMM peak (device, its model,
dtype, threads, torch version, CPU kernel level, plus the shapes), so later processes and runs
pick the same kernel without timing again. Outside :func:`decide` nothing is timed: a shape
decided before uses its kernel, any other SDPA, as before. The row's ``fused_kernel`` says
which kernel(s) ran. Both kernels compute the same attention (equal within float rounding).

A decision is bounded: :data:`ROUNDS` rounds that time the kernels in turn, each one warm-up
and at least two timed calls per kernel, more only while :data:`DECIDE_S` lasts (a few
milliseconds for a layer's shape at batch 8 on a CPU); each round's median call decides that
round, and the kernel that won most rounds is kept; it is made once per machine and shape.
The rounds alternate the kernels so that a burst of load from other processes on a shared
machine takes one round, not all of one kernel's calls; rounds won, not the fastest call nor
the median over rounds, because on such a machine a kernel that allocates large temporaries
(the plain path's score matrix) ran whole rounds at 3 ms and others at 60 ms, where SDPA ran
steadily at 2 to 10 ms, and one or two lucky rounds made the plain path look faster than it
runs in the layer.
Shapes where one SDPA call alone takes longer than :data:`LARGE_S` keep SDPA without timing
the plain path: that is where the plain path materialises a large score matrix, and timing it
would cost seconds.

The layers' linear projections (:class:`Linear`) choose the same way on the CPU in float32
without autograd, between the BLAS GEMM of ``F.linear`` and oneDNN's linear (the op that
inductor's frozen CPU graphs run linears through): on an AMD EPYC the BLAS GEMM measured at
half the speed of oneDNN and of the runtimes (a 1568x768 by 768x2304 product: 167 ms BLAS,
87 ms oneDNN, 75 ms ONNX Runtime, 2 threads). Both compute the same products (equal within
float rounding); ``fused_kernel`` names ``onednn`` where it was chosen. Traces (compile, export,
the MAC counter's) always see ``F.linear``.
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: Seconds of timed calls each kernel gets per decision (after one warm-up call).
DECIDE_S = 0.004
#: Fewest and most timed calls per kernel and round.
MIN_CALLS, MAX_CALLS = 2, 8
#: Rounds of a decision, each timing every kernel once (in turn).
ROUNDS = 3
#: An SDPA call this long keeps SDPA untimed against the plain path (see the module docstring).
LARGE_S = 0.1
CACHE_FILE = "kernels.json"

Mask = torch.Tensor | None
Kernel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float, Mask], torch.Tensor]
#: Seconds one call of kernel ``name`` (run by ``fn``) takes, the median of a few; tests
#: inject a fake one.
Timer = Callable[[str, Callable[[], Any]], float]


def tracing() -> bool:
    """Under torch.compile or an exporter (torch 2.6 has no ``is_exporting``: its exporters
    trace through dynamo, which ``is_compiling`` sees)."""
    exporting = getattr(torch.compiler, "is_exporting", None)
    compiling = torch.compiler.is_compiling() or torch.jit.is_tracing()
    return bool(compiling or (exporting is not None and exporting()))


def sdpa(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, mask: Mask
) -> torch.Tensor:
    if mask is not None and mask.dim() < q.dim():
        # a full-rank view: the CPU kernel takes a broadcast mask only on its slow generic
        # path (measured 2x slower), an expanded one on its fast path
        mask = mask.to(q.dtype).expand(*q.shape[:-1], k.shape[-2])
    if q.dim() > 4 and tracing():  # exporters take 4-D attention only
        lead = q.shape[:-2]
        fq, fk, fv = (t.reshape(-1, *t.shape[-3:]) for t in (q, k, v))
        m = None if mask is None else mask.reshape(-1, *mask.shape[-3:])
        out = F.scaled_dot_product_attention(fq, fk, fv, attn_mask=m, scale=scale)
        return out.reshape(*lead, *out.shape[-2:])
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)


def matmul(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, mask: Mask
) -> torch.Tensor:
    attn = (q @ k.transpose(-2, -1)) * scale
    if mask is not None:
        attn = attn + mask.to(attn.dtype)
    out = attn.softmax(dim=-1) @ v
    if q.dim() == 4 and not q.is_contiguous() and q.transpose(1, 2).is_contiguous():
        # heads split off a (B, L, heads·d) projection: return SDPA's layout, (B, L, heads, d)
        # in memory, so that the caller's merge of the heads is a view here as after SDPA,
        # and a decision times this copy where it happens rather than after the kernel
        out = torch.empty_like(q).copy_(out)
    return out


KERNELS: dict[str, Kernel] = {"sdpa": sdpa, "matmul": matmul}

LinearKernel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def onednn_linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """``x·wᵀ + b`` by oneDNN (no autograd: inference only)."""
    return torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [None], "")


#: The exact GEMMs of a linear; the first is the default (the only one outside a decision).
LINEAR_KERNELS: dict[str, LinearKernel] = {"blas": F.linear, "onednn": onednn_linear}

_memo: dict[tuple[Any, ...], str] = {}
_threads = [0]  # the thread count of the latest eager call (see choose)
_looked: set[tuple[Any, ...]] = set()  # shapes looked up in the cache file, not found there
_deciding: list[set[str]] = []  # the kernels chosen inside the open decide() call
_timer: list[Timer] = []  # an injected timer (tests), else the wall clock


def _wall_timer(name: str, fn: Callable[[], Any]) -> float:
    fn()  # warm-up: allocations, one-off kernel selection
    times: list[float] = []
    spent, n = 0.0, 0
    while n < MAX_CALLS and (n < MIN_CALLS or spent < DECIDE_S):
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        times.append(dt)
        spent, n = spent + dt, n + 1
    return statistics.median(times)


@contextmanager
def using_timer(timer: Timer) -> Iterator[None]:
    """Decide with ``timer`` instead of the wall clock (deterministic tests)."""
    _timer.append(timer)
    try:
        yield
    finally:
        _timer.pop()


def forget() -> None:
    """Drop this process's decisions (the cache file keeps its own)."""
    _memo.clear()
    _looked.clear()


Key = tuple[Any, ...]


def _key(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Mask, threads: int) -> Key:
    """What a decision depends on, cheap to build on every call (shapes, device, threads)."""
    m = None if mask is None else tuple(mask.shape)
    grad = torch.is_grad_enabled() and q.requires_grad
    return (str(q.device), q.dtype, threads, tuple(q.shape), tuple(k.shape), tuple(v.shape), m,
            grad)  # fmt: skip


@functools.cache
def _machine(device: str, dtype: torch.dtype, threads: int) -> str:
    from hilobench.measure.roofline import cache_key

    return cache_key(device, str(dtype).removeprefix("torch."), threads)


def _file_key(key: Key) -> str:
    """The cache file's key: the machine as the roofline cache names it, plus the shapes."""
    return f"{_machine(*key[:3])}|{list(key[3:7])}|grad={key[7]}"


def _cache_path() -> Any:
    from hilobench.measure.roofline import cache_path

    return cache_path().with_name(CACHE_FILE)


def _read() -> dict[str, str]:
    try:
        data = json.loads(_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    known = KERNELS.keys() | LINEAR_KERNELS.keys()
    return {k: v for k, v in data.items() if v in known} if isinstance(data, dict) else {}


def _write(key: str, name: str) -> None:
    """Best effort, like the roofline cache: an unwritable cache costs a decision next time."""
    path = _cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {**_read(), key: name}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def _measure(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, mask: Mask) -> str:
    timer = _timer[-1] if _timer else _wall_timer
    sync = torch.cuda.synchronize if q.is_cuda else (lambda: None)

    def run(kernel: Kernel) -> Callable[[], Any]:
        def call() -> None:
            kernel(q, k, v, scale, mask)
            sync()

        return call

    with torch.no_grad():
        first = timer("sdpa", run(sdpa))
        if first > LARGE_S:
            return "sdpa"
        return _fastest({"sdpa": run(sdpa), "matmul": run(matmul)}, timer, {"sdpa": first})


def _fastest(
    calls: dict[str, Callable[[], Any]], timer: Timer, first: dict[str, float] | None = None
) -> str:
    """The kernel that was fastest in most of :data:`ROUNDS` rounds of timing each in turn
    (``first``: times already taken in the first round); ties go to the lower median time,
    then to the first kernel."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for name, t in (first or {}).items():
        times[name].append(t)
    for r in range(ROUNDS):
        for name, call in calls.items():
            if len(times[name]) <= r:
                times[name].append(timer(name, call))
    wins = dict.fromkeys(calls, 0)
    for r in range(ROUNDS):
        wins[min(calls, key=lambda name: times[name][r])] += 1
    return min(calls, key=lambda name: (-wins[name], statistics.median(times[name])))


def _known(key: Key, measure: Callable[[], str], names: Any) -> str | None:
    """The decision for ``key`` among ``names``: remembered, else from the cache file, else
    measured now inside :func:`decide` (and written to the file); None where none was made."""
    name = _memo.get(key)
    if name is None and not tracing():  # shapes are static in a trace: look up, never time
        if key not in _looked:
            _looked.add(key)
            name = _read().get(_file_key(key))
            name = name if name in names else None
        if name is None and _deciding:
            name = measure()
            _write(_file_key(key), name)
        if name is not None:
            _memo[key] = name
    return name


def choose(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, mask: Mask) -> str:
    """The kernel for this shape: decided before (here or in the cache file), timed now inside
    :func:`decide`, else SDPA. Once a shape is known, a call costs one dictionary lookup."""
    # a trace (compile, export) follows the eager call that decided just before it; it reads
    # that decision, not the thread count (reading it would break a torch.compile graph)
    key = _key(q, k, v, mask, _threads[-1] if tracing() else torch.get_num_threads())
    _threads[-1] = key[2]
    name = _known(key, lambda: _measure(q, k, v, scale, mask), KERNELS) or "sdpa"
    if _deciding:
        _deciding[-1].add(name)
    return name


def _measure_linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> str:
    timer = _timer[-1] if _timer else _wall_timer
    return _fastest({n: functools.partial(fn, x, w, b) for n, fn in LINEAR_KERNELS.items()}, timer)


def choose_linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> str:
    """The GEMM of a linear on ``x``: ``blas`` (``F.linear``) unless oneDNN can run it (CPU,
    float32 outside autocast, no autograd, not traced) and was measured faster for this
    shape. Under autocast ``F.linear`` computes in the autocast dtype; oneDNN's op would not."""
    if (
        x.device.type != "cpu"
        or x.dtype != torch.float32
        or torch.is_autocast_enabled("cpu")
        or torch.is_grad_enabled()
        or tracing()
        or not torch.backends.mkldnn.is_available()
    ):
        return "blas"
    threads = torch.get_num_threads()
    key = ("cpu", x.dtype, threads, "linear", tuple(x.shape), tuple(w.shape), b is None, False)
    name = _known(key, lambda: _measure_linear(x, w, b), LINEAR_KERNELS) or "blas"
    if _deciding and name != "blas":  # the default GEMM goes unnamed in fused_kernel
        _deciding[-1].add(name)
    return name


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """``x·wᵀ + b`` by the faster exact GEMM for its shape."""
    return LINEAR_KERNELS[choose_linear(x, w, b)](x, w, b)


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, same state dict) whose calls take :func:`linear`'s
    GEMM choice while ``fused`` is set, which its attention layer does on its fused path;
    ``F.linear`` otherwise, as the published layers."""

    fused: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            return linear(x, self.weight, self.bias)
        return F.linear(x, self.weight, self.bias)


def mark_fused(module: nn.Module, fused: bool) -> None:
    """Set ``fused`` on every :class:`Linear` inside ``module``."""
    for m in module.modules():
        if isinstance(m, Linear):
            m.fused = fused


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, mask: Mask = None
) -> torch.Tensor:
    """``softmax(q·kᵀ·scale + mask)·v`` by the faster exact kernel for its shape."""
    return KERNELS[choose(q, k, v, scale, mask)](q, k, v, scale, mask)


def decide(step: Callable[[], Any]) -> str | None:
    """Call ``step`` once, deciding the kernel of every attention shape it meets; the kernels
    it chose, e.g. ``matmul`` or ``matmul+sdpa`` (None: no attention went through here)."""
    _deciding.append(set())
    try:
        step()
    finally:
        chosen = _deciding.pop()
    return "+".join(sorted(chosen)) or None
