"""``--cuda-graphs`` on a machine without a GPU: its refusals, the knob's plumbing into the
case key and the step, and the capture sequence against a stand-in for torch.cuda (the real
capture is tested in test_cuda.py where a GPU is present)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import torch

from hilobench.core import options
from hilobench.core.case import Case
from hilobench.core.errors import ConfigError
from hilobench.measure import graphs
from hilobench.run import engine as bench


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["layer", "--attn", "hilo", "--cuda-graphs"], "CUDA device"),
        (["model", "resnet50", "--cuda-graphs", "--batch", "1"], "CUDA device"),
    ],
)
def test_refused_on_cpu_in_one_line(cli, args: list[str], word: str) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli(args)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and word in err and "--cuda-graphs" in err


@pytest.mark.parametrize(
    ("mode", "compile_", "word"), [("train", False, "inference only"), ("infer", True, "compile")]
)
def test_refused_for_training_and_compile(mode: str, compile_: bool, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        graphs.check_graphs({"cuda_graphs": True}, "cuda", mode, compile_)
    graphs.check_graphs({"cuda_graphs": True}, "cuda:0", "infer")  # the one valid setting
    graphs.check_graphs({}, "cpu", mode, compile_)  # off: nothing to refuse


def test_knob_changes_the_key_only_when_on() -> None:
    assert options.given({"cuda_graphs": False}) == {}
    assert options.given({"cuda_graphs": True}) == {"cuda_graphs": True}
    assert options.taken("layer", "hilo", {"cuda_graphs": True}) == {"cuda_graphs": True}
    on = Case(kind="layer", name="hilo", device="cuda", options=(("cuda_graphs", True),))
    off = Case(kind="layer", name="hilo", device="cuda")
    assert on.key != off.key
    assert "cuda_graphs" not in options.builder_kwargs("layer", dict(on.options))


class _FakeCuda:
    """Records what capture() does with streams and graphs."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.capturing = False

    def install(self, mp: pytest.MonkeyPatch) -> None:
        fake = self

        class Stream:
            def __init__(self, dev: Any) -> None:
                pass

            def wait_stream(self, other: Any) -> None:
                fake.log.append("wait")

        class Graph:
            def replay(self) -> None:
                fake.log.append("replay")

        @contextlib.contextmanager
        def stream(s: Any) -> Any:
            fake.log.append("side")
            yield

        @contextlib.contextmanager
        def graph(g: Any) -> Any:
            fake.capturing = True
            yield
            fake.capturing = False

        mp.setattr(torch.cuda, "Stream", Stream)
        mp.setattr(torch.cuda, "CUDAGraph", Graph)
        mp.setattr(torch.cuda, "stream", stream)
        mp.setattr(torch.cuda, "graph", graph)
        mp.setattr(torch.cuda, "current_stream", lambda dev=None: Stream(dev))
        mp.setattr(torch.cuda, "synchronize", lambda dev=None: None)


def test_capture_warms_up_captures_once_and_replays(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeCuda()
    fake.install(monkeypatch)
    calls: list[bool] = []

    def step() -> str:
        calls.append(fake.capturing)
        return "out"

    g = graphs.capture(step, "cuda:0")
    assert calls == [False] * graphs.WARMUP_CALLS + [True]  # warm-up, then one captured call
    assert fake.log[:2] == ["wait", "side"]
    assert g() == "out" and g() == "out"
    assert calls == [False] * graphs.WARMUP_CALLS + [True]  # replays run no Python step
    assert fake.log.count("replay") == 2 and g.eager is step


def test_prepare_step_captures_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    case = Case(kind="layer", name="msa", batch=1, options=(("tokens", "4x4"),))
    graphed = Case(**{**case.__dict__, "options": (*case.options, ("cuda_graphs", True))})
    seen: list[str] = []

    def fake_capture(step: Any, device: str) -> Any:
        seen.append(device)
        return graphs.Graphed(None, step, None, 0.25)

    monkeypatch.setattr(bench, "capture", fake_capture)
    row: dict[str, Any] = {}
    step, _ = bench.prepare_step(graphed, bench.build_subject(graphed), row)  # type: ignore[arg-type]
    assert seen == ["cpu"] and isinstance(step, graphs.Graphed)
    assert row["graph_capture_s"] == 0.25
    plain, _ = bench.prepare_step(case, bench.build_subject(case), {})
    assert not isinstance(plain, graphs.Graphed) and seen == ["cpu"]


def test_profile_refuses_graphs() -> None:
    """A replayed graph runs no operators a module range could hold."""
    from hilobench.profile.capture import profile_case

    case = Case(kind="layer", name="msa", batch=1, options=(("cuda_graphs", True),))
    with pytest.raises(ConfigError, match="profile cannot use --cuda-graphs"):
        profile_case(case, steps=1)
