"""``hilobench profile``: attribution that adds up, exact MACs per module, HiLo's named parts,
the output formats and files, and one-line refusals. Structure and accounting only: no test
asserts which part is faster."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from hilobench.measure.flops import count_macs
from hilobench.profile.attribute import (
    BACKWARD,
    FORWARD,
    OPTIMIZER,
    STEP,
    UNATTRIBUTED,
    Span,
    attribute,
    sweep,
)
from hilobench.profile.capture import module_ranges

CliRunner = Callable[[list[str]], tuple[int, str, str]]

HILO_PARTS = ("Hi-Fi qkv", "Hi-Fi attention", "Lo-Fi pooling", "Lo-Fi attention", "projections")
TINY_HILO = ["--tokens", "8x8", "--dim", "32", "--heads", "4", "--alpha", "0.5", "--window", "2"]
QUICK = ["--batch", "1", "--threads", "1", "--steps", "1"]


def test_sweep_tiles_the_range_with_the_innermost_label() -> None:
    spans = [
        Span(0, 10, "outer", FORWARD),
        Span(2, 4, "inner", FORWARD),
        Span(4, 4.5, "inner2", FORWARD),
        Span(8, 14, "late", BACKWARD),  # overlaps the end of outer (another thread)
    ]
    segs = sweep(spans, -1, 12)
    got = [(s.start, s.end, s.label) for s in segs]
    assert got == [
        (-1, 0, UNATTRIBUTED),
        (0, 2, "outer"),
        (2, 4, "inner"),
        (4, 4.5, "inner2"),
        (4.5, 8, "outer"),
        (8, 12, "late"),
    ]
    assert sum(s.end - s.start for s in segs) == pytest.approx(13)


def _toy() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 512))


def test_toy_model_macs_per_module_are_exact() -> None:
    x = torch.randn(3, 16)
    mc = count_macs(_toy(), (x,))
    assert mc.by_module["0"] == 3 * 16 * 8
    assert mc.by_module["2"] == 3 * 8 * 512
    assert mc.by_module["1"] == 0
    assert mc.by_module[""] == mc.total == 3 * 16 * 8 + 3 * 8 * 512


def test_toy_training_step_parts_add_up_to_the_step() -> None:
    from torch.profiler import ProfilerActivity, profile

    model, x = _toy(), torch.randn(4, 16)
    opt = torch.optim.AdamW(model.parameters())

    def step() -> None:
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()

    with module_ranges(model):
        step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(2):
                with torch.autograd.profiler.record_function(STEP):
                    step()
    a = attribute(prof.events())
    assert a.steps == 2
    parts_sum = sum(sum(ph.values()) for ph in a.parts.values())
    assert parts_sum == pytest.approx(a.total_s, rel=1e-9)
    assert sum(a.ops.values()) == pytest.approx(a.total_s, rel=1e-9)
    for name in ("0", "2"):  # both linears ran forward and backward
        assert a.parts[name][FORWARD] > 0 and a.parts[name][BACKWARD] > 0
    assert a.parts[OPTIMIZER]
    assert set(a.parts) >= {"", "0", "1", "2"}


def _profile(cli: CliRunner, args: list[str]) -> tuple[int, str, str]:
    return cli(["profile", *args])


def test_hilo_layer_json_names_its_parts_and_writes_files(tmp_path: Path, cli: CliRunner) -> None:
    out = tmp_path / "p"
    code, stdout, stderr = _profile(
        cli, ["--attn", "hilo", *TINY_HILO, *QUICK, "--train", "--out", str(out), "--format",
              "json"]
    )  # fmt: skip
    assert code == 0, stderr
    (b,) = json.loads(stdout)
    kinds = [p["name"] for p in b["kinds"]]
    for part in HILO_PARTS:
        assert part in kinds
    leaves = sum(p["time_s"] for p in b["modules"] if p["leaf"])
    assert leaves == pytest.approx(b["parts_sum_s"], rel=1e-9)
    assert b["parts_sum_s"] == pytest.approx(b["profiled_step_s"], rel=1e-6)
    assert sum(p["share"] for p in b["kinds"]) == pytest.approx(1.0, rel=1e-6)
    assert b["residual"] == pytest.approx(b["parts_sum_s"] / b["step_s"] - 1)
    # the traced count of the whole layer is the analytic one (batch 1)
    from hilobench.attention import build_attention

    hilo = build_attention("hilo", 32, 4, window=2, alpha=0.5)
    assert b["modules"][0]["macs"] == hilo.macs(8, 8)
    trace = json.loads((out / "trace.json").read_text())
    assert trace["traceEvents"]
    assert (out / "profile.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "profile.json").read_text())[0]["label"] == b["label"]
    # the figure redrawn from the stored profile: each bar's shares add up to the step
    from hilobench.profile.bars import stacked_bars
    from hilobench.profile.breakdown import Breakdown

    drawn = stacked_bars([Breakdown.from_json(b)], tmp_path / "again.png")
    assert sum(drawn[b["label"]].values()) == pytest.approx(1.0, rel=1e-6)


def test_two_layers_at_two_batches_side_by_side_as_csv(tmp_path: Path, cli: CliRunner) -> None:
    """Layers and a batch list (``--batch 1,2``, parsed as `layer` and `model` parse it): one
    breakdown per layer and batch."""
    code, stdout, stderr = _profile(
        cli, ["--attn", "hilo,swmsa", *TINY_HILO, *QUICK, "--batch", "1,2", "--out",
              str(tmp_path / "p"), "--format", "csv"]
    )  # fmt: skip
    assert code == 0, stderr
    rows = list(csv.DictReader(io.StringIO(stdout)))
    cases = {r["case"] for r in rows}
    assert len(cases) == 4 and {r["view"] for r in rows} == {"modules", "kinds", "ops"}
    assert sum(" b2 " in c for c in cases) == 2, cases
    for case in cases:
        for view in ("modules", "kinds", "ops"):
            share = sum(float(r["share"]) for r in rows if r["case"] == case
                        and r["view"] == view and r["leaf"] == "True")  # fmt: skip
            assert share == pytest.approx(1.0, rel=1e-6)
    assert (tmp_path / "p" / "trace-1.json").exists() and (tmp_path / "p" / "trace-2.json").exists()


def test_model_kinds_and_depth(tmp_path: Path, cli: CliRunner) -> None:
    code, stdout, stderr = _profile(
        cli, ["litv2_s", "--res", "64", "--dtm", "conv", "--depth", "2", *QUICK, "--out",
              str(tmp_path / "m"), "--format", "json"]
    )  # fmt: skip
    assert code == 0, stderr
    (b,) = json.loads(stdout)
    kinds = {p["name"] for p in b["kinds"]}
    assert kinds >= {"patch embed", "token merging (DTM)", "attention", "FFN", "norms", "head"}
    assert max(p["depth"] for p in b["modules"]) == 2
    assert any(p["key"] == "stages.1" for p in b["modules"])
    # the traced count's conv MACs reach the profiler's conv2d row
    assert any(p["name"] == "aten::conv2d" and p["macs"] for p in b["ops"])
    assert b["case"]["options"] == {"dtm": "conv"} or ["dtm", "conv"] in b["case"]["options"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--attn", "hilo", "--depth", "-1"], "depth"),
        (["--attn", "hilo", "--format", "xml"], "format"),
        (["--attn", "hilo", "--steps", "0"], "steps"),
        (["--attn", "hilo", "--dtm", "conv"], "--dtm"),
        (["--attn", "nosuch"], "nosuch"),
        ([], "nothing to profile"),
        (["--attn", "hilo", "--batch", "1,0"], "batch"),
        ([",,,"], "no model given"),
        (["--attn", ",,,"], "no attention given"),
        (["--attn", "hilo,nosuch*"], "'nosuch*' matches no attention"),
        (["litv2_s", "--attn", "msa", "--sr", "4"], "msa takes no sr=4"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], needle: str, cli: CliRunner, tmp_path: Path
) -> None:
    code, stdout, stderr = _profile(cli, [*args, "--out", str(tmp_path / "x")])
    assert code == 2
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0]
    assert not (tmp_path / "x").exists()


def test_profiler_log_lines_are_held_back(capfd: pytest.CaptureFixture[str]) -> None:
    """kineto's ``USDT … profiler_start`` lines (written by C++ to file descriptor 2) do not
    reach the user; anything else written meanwhile does."""
    from torch.profiler import ProfilerActivity, profile

    from hilobench.profile.capture import quiet_profiler_log

    capfd.readouterr()
    with quiet_profiler_log():
        os.write(2, b"USDT:2026-12-07 13:59:07 23053:23053 Sync.cpp:39] profiler_start\n")
        os.write(2, b"a warning the user must see\n")
        with profile(activities=[ProfilerActivity.CPU]):
            torch.ones(3).add_(1)
    err = capfd.readouterr().err
    assert "a warning the user must see" in err
    assert "USDT" not in err and "profiler_start" not in err


def test_table_fits_100_columns_in_mib(
    tmp_path: Path, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    code, stdout, stderr = _profile(
        cli, ["--attn", "hilo", *TINY_HILO, *QUICK, "--out", str(tmp_path / "p")]
    )
    assert code == 0, stderr
    tables = stdout.split("without the profiler")[0]  # the summary line after them is prose
    assert "peak MiB" in tables and "MB" not in tables.replace("MiB", "")
    assert "…" not in tables
    assert max(len(line) for line in tables.splitlines()[:-1]) <= 100
    assert "GMACs" in tables and "0.000 " not in tables  # tiny counts keep their digits
