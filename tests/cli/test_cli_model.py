"""The `model` command: listing, one measured row per mode, and one-line errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from hilobench.core.row import is_measured
from hilobench.models import ModelEntry, registry

CliRunner = Callable[[list[str]], tuple[int, str, str]]


def test_list_shows_sources_and_unavailable_reasons(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = ModelEntry("gone_net", "Gone", "gone", "unavailable", None, 224, reason="no code here")
    monkeypatch.setitem(registry.MODELS.entries, "gone_net", gone)
    code, stdout, _ = cli(["model", "--list"])
    assert code == 0
    for needle in ("litv2_s", "LITv2-B@384", "swin_t", "timm", "CvT-13", "Focal-Tiny"):
        assert needle in stdout
    assert "unavailable" in stdout and "no code here" in stdout
    assert "│" not in stdout and "─" in stdout  # the one table style, as every other table
    rows = {line.split()[0]: line for line in stdout.splitlines() if line.strip()}
    assert "hilobench" in rows["cvt_13"] and "hilobench" in rows["focal_tiny"]


def test_litv2_rows_infer_and_train(tmp_path: Path, cli: CliRunner) -> None:
    code, stdout, _ = cli(
        [
            "model",
            "litv2_s",
            "--res",
            "64",
            "--batch",
            "2",
            "--budget",
            "0.3",
            "--mode",
            "both",
            "--dtm",
            "conv",
            "--out",
            str(tmp_path / "r"),
            "--format",
            "json",
        ],  # fmt: skip
    )
    assert code == 0
    rows = json.loads(stdout)
    assert [r["mode"] for r in rows] == ["infer", "train"]
    for r in rows:
        assert is_measured(r)
        assert r["macs"] == r["macs_traced"] and r["uncounted_ops"] == []
        assert 27.0e6 < r["params"] < 28.0e6
        assert r["throughput_median"] > 0 and r["peak_mem_bytes"] > 0
    assert rows[1]["peak_mem_bytes"] > rows[0]["peak_mem_bytes"]  # gradients + optimizer state


@pytest.mark.parametrize(
    "args, needle",
    [
        (["no_such_model"], "litv2_s"),
        (["cvt_13", "--res", "2"], "at least 3 pixels"),
        (["litv2_s", "--res", "0"], "0"),
        (["litv2_s", "--res", "12y"], "12y"),
        (["litv2_s", "--attn", "bogus"], "bogus"),
        (["litv2_s", "--dtm", "wobbly"], "wobbly"),
        (["resnet50", "--alpha", "0.5"], "alpha"),
        (["timm:not_a_real_model_name"], "not_a_real_model_name"),
        (["litv2_ss"], "did you mean 'litv2_s'"),
        (["convnext_tin"], "did you mean 'convnext_tiny'"),
        (["litv2_s", "--dtm", "deforn"], "did you mean 'deform'"),
        (["zz_*"], "'zz_*' matches no model"),
        ([",,,"], "no model given"),
    ],
)
def test_bad_model_input(args: list[str], needle: str, tmp_path: Path, cli: CliRunner) -> None:
    out = tmp_path / "never"
    code, stdout, stderr = cli(["model", *args, "--out", str(out)])
    assert code == 2, stderr
    assert stdout == ""
    assert len(stderr.strip().splitlines()) == 1 and needle in stderr, stderr
    assert not out.exists()


def test_impl_default_and_both_on_timm_models(tmp_path: Path, cli: CliRunner) -> None:
    """The default is the fused path; ``--impl both`` gives a timm model both rows when timm
    fuses its attention (a ViT), one row when there is nothing to fuse (a CNN)."""
    tiny = ["--res", "32", "--batch", "1", "--budget", "0.05", "--no-roofline", "--format", "json"]
    runs = {
        "default": ["timm:vit_tiny_patch16_224", *tiny],
        "vit": ["timm:vit_tiny_patch16_224", "--impl", "both", *tiny],
        "cnn": ["timm:resnet18", "--impl", "both", *tiny],
    }
    got = {}
    for key, args in runs.items():
        code, stdout, stderr = cli(["model", *args, "--out", str(tmp_path / key)])
        assert code == 0, stderr
        got[key] = [r["impl"] for r in json.loads(stdout)]
    assert got == {"default": ["fused"], "vit": ["reference", "fused"], "cnn": ["fused"]}
