"""Stopping a run cleanly: SIGINT and SIGTERM become a KeyboardInterrupt at a safe moment.

Inside :func:`stop_on_signals` both signals raise KeyboardInterrupt, so a run stopped either
way ends its worker, keeps its rows and releases its run directory; :func:`deferred_signals`
holds a signal until a block that must finish whole (a unit's rows landing) is done.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class Stop:
    """The first stop signal received (``signum``) and the state of deferred sections."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.depth = 0
        self.pending = False

    @property
    def exit_code(self) -> int:
        """128 + the signal, as a shell reports it (130 for Ctrl-C, 143 for SIGTERM)."""
        return 128 + (self.signum or signal.SIGINT)

    def handle(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
        if self.depth:
            self.pending = True
            return
        raise KeyboardInterrupt


_stop: Stop | None = None


@contextmanager
def stop_on_signals(restore: bool = True) -> Iterator[Stop]:
    """While running, SIGINT and SIGTERM both raise KeyboardInterrupt, so a run stopped either
    way ends its worker, keeps its rows and releases its run directory. SIGINT is set
    explicitly: a shell that starts a job in the background leaves it ignored. Inside another
    such block it is that block's state (the first signal counts once). ``restore=False``
    ignores both signals afterwards instead of restoring the handlers before: a process whose
    work is done or given up must not turn its exit into a kill."""
    global _stop
    if _stop is not None:
        yield _stop
        return
    stop = Stop()
    sigs = (signal.SIGINT, signal.SIGTERM)
    try:
        old: dict[int, Callable[..., Any] | int | None] = {
            s: signal.signal(s, stop.handle) for s in sigs
        }
    except ValueError:  # not the main thread
        yield stop
        return
    _stop = stop
    try:
        yield stop
    finally:
        _stop = None
        for s, h in old.items():
            signal.signal(s, h if restore else signal.SIG_IGN)


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold a stop signal until the block is done (inside :func:`stop_on_signals`)."""
    stop = _stop
    if stop is None:
        yield
        return
    stop.depth += 1
    try:
        yield
    finally:
        stop.depth -= 1
        if not stop.depth and stop.pending:
            stop.pending = False
            raise KeyboardInterrupt


def current_stop() -> Stop | None:
    """The state of the innermost :func:`stop_on_signals` block, None outside one."""
    return _stop
