"""The `layer` command end to end: files, row keys, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from hilobench.core.row import is_measured

CliRunner = Callable[[list[str]], tuple[int, str, str]]

ROW_KEYS = {
    "attention", "impl", "res", "tokens", "batch", "device", "dtype", "threads", "params", "macs",
    "macs_traced", "uncounted_ops", "throughput_median", "throughput_ci_low", "throughput_ci_high",
    "latency_ms_p50", "latency_ms_p90", "cov", "peak_mem_bytes", "status",
}  # fmt: skip

FAST = ["--batch", "2", "--budget", "0.2", "--dim", "64", "--heads", "4"]


def test_layer_json_rows_and_files(tmp_path: Path, cli: CliRunner) -> None:
    out = tmp_path / "run"
    code, stdout, _ = cli(
        [
            "layer",
            "--attn",
            "hilo,sra",
            "--res",
            "224,15x13",
            "--tokens",
            "15x13",
            *FAST,
            "--out",
            str(out),
            "--format",
            "json",
        ],  # fmt: skip
    )
    assert code == 0
    rows = json.loads(stdout)
    assert len(rows) == 4
    for r in rows:
        assert ROW_KEYS <= set(r)
        assert is_measured(r)
        assert r["tokens"] == "15x13"
        assert r["macs"] == r["macs_traced"]
        assert r["uncounted_ops"] == []
        assert r["throughput_ci_low"] <= r["throughput_median"] <= r["throughput_ci_high"]
        assert r["peak_mem_bytes"] > 0
    assert {r["attention"] for r in rows} == {"hilo", "sra"}
    assert {r["impl"] for r in rows} == {"fused"}  # the default: what people run
    for name in ("rows.jsonl", "results.csv", "results.md", "env.json"):
        assert (out / name).is_file(), name
    lines = (out / "rows.jsonl").read_text().splitlines()
    assert len(lines) == 4
    env = json.loads((out / "env.json").read_text())
    assert env["env_id"] == rows[0]["env_id"]
    csv_text = (out / "results.csv").read_text()
    assert csv_text.splitlines()[0].startswith("kind,name,attention,impl")


def test_layer_default_tokens_are_one_sixteenth(tmp_path: Path, cli: CliRunner) -> None:
    code, stdout, _ = cli(
        [
            "layer",
            "--attn",
            "msa",
            "--res",
            "224,384x256",
            *FAST,
            "--out",
            str(tmp_path / "r"),
            "--format",
            "json",
        ],  # fmt: skip
    )
    assert code == 0
    assert [r["tokens"] for r in json.loads(stdout)] == ["14x14", "24x16"]


def test_tmsa_reports_per_layer_figures(tmp_path: Path, cli: CliRunner) -> None:
    from hilobench.attention import build_attention

    code, stdout, _ = cli(
        ["layer", "--attn", "tmsa", *FAST, "--out", str(tmp_path / "r"), "--format", "json"]
    )
    assert code == 0
    (row,) = json.loads(stdout)
    pair = build_attention("tmsa", 64, 4)
    assert row["macs"] == pair.macs(14, 14) // 2
    assert row["params"] == sum(p.numel() for p in pair.parameters()) // 2


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--attn", "nope"], "'nope'"),
        (["--heads", "5"], "heads=5"),
        (["--alpha", "1.5"], "1.5"),
        (["--alpha", "-0.1"], "-0.1"),
        (["--window", "0"], "window"),
        (["--res", "8"], "8"),
        (["--res", "abc"], "'abc'"),
        (["--batch", "0"], "batch"),
        (["--dtype", "float64"], "float64"),
        (["--format", "xml"], "xml"),
        (["--impl", "magic"], "magic"),
        (["--impl", "fusd"], "did you mean 'fused'"),
        (["--attn", "hilo,swmas"], "did you mean 'swmsa'"),
        (["--attn", "*nothing*"], "'*nothing*' matches no attention"),
        (["--dtype", "bfloat61"], "did you mean 'bfloat16'"),
        (["--bogus-flag"], "--bogus-flag"),
    ],
)
def test_bad_input_one_line_exit_2(
    args: list[str], needle: str, tmp_path: Path, cli: CliRunner
) -> None:
    out = tmp_path / "never"
    code, stdout, stderr = cli(["layer", *args, "--out", str(out)])
    assert code == 2
    assert stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert needle in lines[0]
    assert "Traceback" not in stderr
    assert not out.exists()


def test_attention_globs(cli: CliRunner) -> None:
    """A glob names every attention it matches, each once, in name order; the layer's cases
    come out as the list would give them (checked before anything is measured)."""
    from hilobench.attention import resolve_attentions

    assert resolve_attentions(["*msa", "hilo", "msa"]) == ["msa", "swmsa", "tmsa", "wmsa", "hilo"]
    assert resolve_attentions(["[gl]sa"]) == ["gsa", "lsa"]


@pytest.mark.parametrize(
    "command", [["layer"], ["model"], ["report"], ["compare"], ["suite", "run"], ["gate"]]
)
def test_help_shows_plain_metavars(cli: CliRunner, command: list[str]) -> None:
    """Help names values as words (NUMBER, PATH...), never as typer's <bool>, <list[Path]>."""
    code, stdout, _ = cli([*command, "--help"])
    assert code == 0 and "--help" in stdout
    for typed in ("<bool>", "<str>", "<int>", "<float>", "<path>", "<list["):
        assert typed not in stdout, (command, typed)
    assert any(word in stdout for word in ("NUMBER", "PATH", "TEXT"))


def test_unknown_attention_lists_known(cli: CliRunner) -> None:
    code, _, stderr = cli(["layer", "--attn", "nope"])
    assert code == 2
    for name in ("hilo", "msa", "sra", "wmsa", "swmsa", "tmsa"):
        assert name in stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_without_cuda(tmp_path: Path, cli: CliRunner) -> None:
    code, _, stderr = cli(["layer", "--device", "cuda", "--out", str(tmp_path / "x")])
    assert code == 2 and "cuda" in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("device", ["cuda:1", "cuda:x", "cuda:-1"])
def test_cuda_ordinal_must_exist(monkeypatch: pytest.MonkeyPatch, device: str) -> None:
    """On a one-GPU machine a second ordinal is a clear error, not a CUDA traceback."""
    from hilobench.core.errors import ConfigError
    from hilobench.run import engine as bench

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    bench.check_device("cuda:0")
    bench.check_device("cuda")
    with pytest.raises(ConfigError, match=r"cuda:0 to cuda:0"):
        bench.check_device(device)


def test_float16_on_cpu_refused(cli: CliRunner) -> None:
    code, _, stderr = cli(["layer", "--dtype", "float16", "--device", "cpu"])
    assert code == 2 and "float16" in stderr


def test_unwritable_out(cli: CliRunner) -> None:
    # /proc refuses new directories even for root, so this holds for every user
    code, _, stderr = cli(["layer", "--attn", "msa", "--out", "/proc/hilobench-x/run"])
    assert code == 2 and "not writable" in stderr
    assert not os.path.exists("/proc/hilobench-x")


def test_out_is_a_file(tmp_path: Path, cli: CliRunner) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    code, _, stderr = cli(["layer", "--attn", "msa", "--out", str(f / "run")])
    assert code == 2 and "file" in stderr
    assert f.read_text() == "x"


def test_module_entry_point_and_console_error() -> None:
    """`python -m hilobench` runs, and a bad value exits 2 with one line, no traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "hilobench", "layer", "--attn", "bogus"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "bogus" in proc.stderr
    assert "Traceback" not in proc.stderr
