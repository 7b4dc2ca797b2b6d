"""Fast paths end to end: torch.compile, bfloat16 autocast, channels-last, fused backbones."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from hilobench.attention import set_impl
from hilobench.core.row import is_measured
from hilobench.models import build_model

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


def test_sdpa_of_any_rank_equals_the_spelled_out_attention(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under an exporter the fused kernel gets 4-D inputs whatever the layer's rank (ONNX's
    SDPA takes no other); folding the leading dims into the batch changes nothing, masks
    included."""
    import torch

    from hilobench.attention import kernels
    from hilobench.attention.msa import attend

    monkeypatch.setattr(kernels, "tracing", lambda: True)  # the exporter's path
    torch.manual_seed(0)
    for lead in [(2, 3), (2, 3, 4)]:
        q, k, v = (torch.randn(*lead, 5, 8) for _ in range(3))
        got = kernels.sdpa(q, k, v, 0.3, None)
        assert got.shape == (*lead, 5, 8)
        torch.testing.assert_close(got, attend(q, k, v, 0.3, "reference"), rtol=1e-5, atol=1e-6)
    mask = torch.zeros(5, 7).masked_fill(torch.rand(5, 7) > 0.7, float("-inf"))
    mask[:, 0] = 0.0  # every query keeps a key
    q = torch.randn(2, 3, 4, 5, 8)
    k, v = torch.randn(2, 3, 4, 7, 8), torch.randn(2, 3, 4, 7, 8)
    want = ((q @ k.transpose(-2, -1)) * 0.3 + mask).softmax(-1) @ v
    torch.testing.assert_close(kernels.sdpa(q, k, v, 0.3, mask), want, rtol=1e-5, atol=1e-6)
