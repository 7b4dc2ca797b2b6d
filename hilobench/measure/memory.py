"""Peak memory of one call, three ways.

- :func:`peak_tensor_bytes`: live tensor storage bytes seen at the ATen dispatch level. Exact
  and deterministic on any device (CPU, meta, CUDA), so it can be compared exactly in CI; it
  ignores allocator rounding, caches and workspace memory that kernels take internally.
- :func:`peak_rss_rise`: what the operating system saw (Linux high-water mark). Includes the
  allocator and library buffers; noisy, best run in a fresh subprocess.
- :func:`cuda_peak_bytes`: the CUDA caching allocator's own peak counter.

And one estimate before anything is allocated: :func:`check_fits` refuses a case whose
attention matrix and activations would not fit in the memory available.
"""

from __future__ import annotations

import collections
import gc
import sys
import weakref
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from hilobench.core.errors import ConfigError

__all__ = [
    "TensorMemoryTracker",
    "peak_tensor_bytes",
    "peak_rss_rise",
    "cuda_peak_bytes",
    "is_oom",
    "available_bytes",
    "check_fits",
]

# Ops that return a freshly materialised tensor that was built outside the dispatcher
# (``torch.tensor([...])``): the storage is new although it is also the op's input.
_FRESH_OPS = {"aten::lift_fresh", "aten::lift_fresh_copy"}


def _storage_of(t: torch.Tensor) -> torch.UntypedStorage | None:
    """The tensor's untyped storage, or None for layouts without one (sparse, nested, ...)."""
    try:
        return t.untyped_storage()
    except (RuntimeError, NotImplementedError, TypeError):
        return None


class TensorMemoryTracker(TorchDispatchMode):
    """Track live bytes of tensor storages created while the mode is active.

    Every ATen op passes through ``__torch_dispatch__``; storages of its outputs that were not
    among its inputs and are not tracked yet are new allocations. Storages are keyed by their
    identity, so views (which share a storage) are counted once. A ``weakref.finalize`` on each
    storage queues its release; releases are applied before the next allocation is counted, so
    ``peak`` is exact at op granularity. Storages alive before the mode started are not counted
    (the result is "above what was live before"), nor is memory that kernels use internally.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._serial = 0
        # serial -> (storage key, nbytes, finalizer)
        self._tracked: dict[int, tuple[int, int, weakref.finalize]] = {}
        self._by_key: dict[int, int] = {}
        # Finalizers may run on any thread (e.g. autograd workers): they only append here.
        self._freed: collections.deque[int] = collections.deque()

    def _apply_frees(self) -> None:
        while self._freed:
            serial = self._freed.popleft()
            entry = self._tracked.pop(serial, None)
            if entry is None:
                continue
            key, nbytes, _ = entry
            self.live -= nbytes
            if self._by_key.get(key) == serial:
                del self._by_key[key]

    def _track(self, storage: torch.UntypedStorage) -> None:
        key = storage._cdata
        nbytes = int(storage.nbytes())
        serial = self._by_key.get(key)
        if serial is not None:
            # Already tracked: only a resize (``out=``, ``resize_``) can change its size.
            k, old, fin = self._tracked[serial]
            if nbytes != old:
                self._tracked[serial] = (k, nbytes, fin)
                self.live += nbytes - old
            return
        self._serial += 1
        serial = self._serial
        fin = weakref.finalize(storage, self._freed.append, serial)
        fin.atexit = False
        self._tracked[serial] = (key, nbytes, fin)
        self._by_key[key] = serial
        self.live += nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        flat_in, _ = tree_flatten((args, kwargs))
        in_keys = set()
        for a in flat_in:
            if isinstance(a, torch.Tensor):
                s = _storage_of(a)
                if s is not None:
                    in_keys.add(s._cdata)
        out = func(*args, **kwargs)
        self._apply_frees()
        fresh = getattr(getattr(func, "_schema", None), "name", "") in _FRESH_OPS
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            s = _storage_of(t)
            if s is None:
                continue
            key = s._cdata
            if key in self._by_key or fresh or key not in in_keys:
                self._track(s)
        self.peak = max(self.peak, self.live)
        return out

    def __exit__(self, exc_type, exc, tb):
        try:
            return super().__exit__(exc_type, exc, tb)
        finally:
            # Storages that outlive the measurement no longer need watching.
            self._apply_frees()
            for _, _, fin in self._tracked.values():
                fin.detach()


def peak_tensor_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes of tensor storages allocated by ``fn()`` and alive at the same time.

    Deterministic (no allocator, no timing): the figure the regression gate compares exactly.
    The garbage collector is paused during ``fn`` so that cyclic garbage is released at the
    same point on every run. Works on any device, including ``meta``.
    """
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with TensorMemoryTracker() as tracker:
            fn()
    finally:
        if gc_was_enabled:
            gc.enable()
    return int(tracker.peak)


def _status_kb(field: str) -> int | None:
    """A ``kB`` field from /proc/self/status, in bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def peak_rss_rise(fn: Callable[[], object]) -> int | None:
    """Rise of the process's resident-set high-water mark during ``fn()``, in bytes.

    Linux only: writing ``5`` to /proc/self/clear_refs resets the high-water mark (VmHWM) to
    the current RSS, so ``VmHWM after - VmRSS before`` is the peak rise caused by ``fn``.
    Returns None where this is unsupported (not Linux, no /proc, or the reset is refused,
    e.g. kernels older than 4.0 or restricted containers). Memory already mapped by the process
    and reused by ``fn`` is not a rise, so run it in a fresh subprocess for a clean figure.
    """
    if not sys.platform.startswith("linux"):
        return None
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    before = _status_kb("VmRSS")
    hwm_reset = _status_kb("VmHWM")
    if before is None or hwm_reset is None or hwm_reset > before + (1 << 20):
        # The reset did not take effect: the mark still reflects the past.
        return None
    fn()
    after = _status_kb("VmHWM")
    if after is None:
        return None
    return max(0, after - before)


def cuda_peak_bytes(fn: Callable[[], object], device: str | torch.device = "cuda") -> int:
    """Peak CUDA memory allocated by tensors during ``fn()``, above what was allocated before.

    Uses the caching allocator's counters: ``max_memory_allocated`` after ``fn`` minus
    ``memory_allocated`` just before (both count bytes handed to tensors, rounded to the
    allocator's block sizes, not the larger reserved/cached pool). Synchronises around ``fn``
    so that asynchronous kernels are finished before the peak is read.
    """
    dev = torch.device(device)
    if dev.type != "cuda":
        raise ValueError(f"cuda_peak_bytes needs a cuda device, got {str(dev)!r}")
    gc.collect()
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev)
    fn()
    torch.cuda.synchronize(dev)
    return max(0, int(torch.cuda.max_memory_allocated(dev)) - int(base))


_OOM_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory")


def is_oom(exc: BaseException) -> bool:
    """True when ``exc`` means the device or host ran out of memory (recorded as ``OOM``).

    Covers ``torch.OutOfMemoryError`` (CUDA and others), ``MemoryError`` and the
    ``RuntimeError`` messages of the CUDA, MPS and CPU allocators.
    """
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    if isinstance(exc, RuntimeError):
        msg = str(exc).lower()
        return any(m in msg for m in _OOM_MESSAGES)
    return False


#: Rough lower bounds of what a measurement holds besides its attention matrix, per input
#: element: a layer keeps its input, q / k / v and its output (~6x); a backbone's first
#: stages hold several feature maps wider than the image (~8x the image).
LAYER_ACTIVATION_FACTOR = 6
MODEL_ACTIVATION_FACTOR = 8
_GB = 1e9


def available_bytes(device: str) -> int:
    """Memory a measurement can use now: available RAM on the CPU, free memory on CUDA."""
    if device.startswith("cuda"):
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    import psutil  # ~20 ms: only a memory check needs it

    return int(psutil.virtual_memory().available)


def check_fits(label: str, attention_bytes: int, activation_bytes: int, device: str) -> None:
    """Refuse (ConfigError) a case whose estimate exceeds the memory available, before anything
    is allocated: one line naming the estimate, what dominates it and what is available."""
    need = attention_bytes + activation_bytes
    have = available_bytes(device)
    if need <= have:
        return
    what = "the attention matrix" if attention_bytes >= activation_bytes else "activations"
    raise ConfigError(
        f"{label} needs ~{need / _GB:.1f} GB for {what}, {have / _GB:.1f} GB available; "
        "lower --batch, the resolution or --tokens"
    )
