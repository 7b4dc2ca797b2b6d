"""Fast paths end to end: torch.compile, bfloat16 autocast, channels-last, fused backbones."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import torch

from hilobench.attention import set_impl
from hilobench.models import build_model
from hilobench.row import is_measured

CliRunner = Callable[[list[str]], tuple[int, str, str]]
TINY = ["--dim", "64", "--heads", "4", "--batch", "2", "--budget", "0.3", "--format", "json"]


def test_compile_time_is_reported_apart(tmp_path: Path, cli: CliRunner) -> None:
    code, stdout, _ = cli(["layer", "--attn", "msa", "--compile", *TINY, "--out", str(tmp_path)])
    assert code == 0
    (row,) = json.loads(stdout)
    assert is_measured(row) and row["compile"] is True
    assert row["compile_s"] > 0
    # the timed samples exclude compilation: no sample comes near the compile time
    assert max(row["samples_s"]) < row["compile_s"]


def test_bfloat16_rows(tmp_path: Path, cli: CliRunner) -> None:
    code, stdout, _ = cli(
        [
            "layer",
            "--attn",
            "hilo,wmsa",
            "--impl",
            "both",
            "--dtype",
            "bfloat16",
            *TINY,
            "--out",
            str(tmp_path),
        ]  # fmt: skip
    )
    assert code == 0
    rows = json.loads(stdout)
    assert len(rows) == 4
    assert all(is_measured(r) and r["dtype"] == "bfloat16" for r in rows)


def test_channels_last_model_row(tmp_path: Path, cli: CliRunner) -> None:
    code, stdout, _ = cli(
        [
            "model",
            "timm:resnet18",
            "--res",
            "64",
            "--batch",
            "2",
            "--budget",
            "0.3",
            "--channels-last",
            "--format",
            "json",
            "--out",
            str(tmp_path),
        ]  # fmt: skip
    )
    assert code == 0
    (row,) = json.loads(stdout)
    assert is_measured(row) and row["channels_last"] is True


def test_litv2_fused_matches_reference() -> None:
    torch.manual_seed(0)
    ref = build_model("litv2_s", res=(64, 64), dtm="conv").eval()
    fused = set_impl(copy.deepcopy(ref), "fused")
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        a, b = ref(x), fused(x)
    assert float((a - b).abs().max() / a.abs().max()) <= 1e-5
