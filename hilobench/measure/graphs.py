"""``--cuda-graphs``: capture an inference step once as a CUDA graph and time its replays.

A small layer on a fast GPU spends as long launching its kernels as running them; a replayed
graph launches them all at once, so the timed figure is what the kernels cost. Inference only
(a training step's optimizer and autograd state do not belong in a static graph), CUDA only,
and not together with ``--compile`` (whose own ``reduce-overhead`` mode captures graphs).
Only APIs present since torch 2.0 are used (``torch.cuda.graph``, ``CUDAGraph.replay``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from hilobench.core.errors import ConfigError

#: Calls on a side stream before capture: cuDNN autotuning and lazy initialisation happen there.
WARMUP_CALLS = 3


def check_graphs(
    options: Mapping[str, Any], device: str, mode: str, compile_: bool = False
) -> None:
    """Refuse ``cuda_graphs`` where it cannot apply, in one line naming why."""
    if not options.get("cuda_graphs"):
        return
    if not str(device).startswith("cuda"):
        raise ConfigError(
            f"--cuda-graphs needs a CUDA device, got --device {device}; drop --cuda-graphs"
        )
    if mode != "infer":
        raise ConfigError("--cuda-graphs times inference only; drop --train / --mode train")
    if compile_:
        raise ConfigError("--cuda-graphs and --compile cannot be combined; choose one")


class Graphed:
    """A captured step: calling it replays the graph. ``eager`` is the step it was captured
    from (the bound diagnosis traces its operators; a replay dispatches none)."""

    def __init__(self, graph: Any, eager: Callable[[], Any], out: Any, capture_s: float):
        self.graph = graph
        self.eager = eager
        self.out = out
        self.capture_s = capture_s

    def __call__(self) -> Any:
        self.graph.replay()
        return self.out


def capture(step: Callable[[], Any], device: str) -> Graphed:
    """Warm ``step`` up on a side stream, then capture one call of it into a CUDA graph (the
    inputs are the step's own fixed tensors, so every replay reads the same memory)."""
    import torch  # ~1.5 s: only a CUDA run gets here

    t0 = time.perf_counter()
    dev = torch.device(device)
    side = torch.cuda.Stream(dev)
    side.wait_stream(torch.cuda.current_stream(dev))
    with torch.cuda.stream(side):
        for _ in range(WARMUP_CALLS):
            step()
    torch.cuda.current_stream(dev).wait_stream(side)
    torch.cuda.synchronize(dev)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = step()
    torch.cuda.synchronize(dev)
    return Graphed(graph, step, out, round(time.perf_counter() - t0, 3))
