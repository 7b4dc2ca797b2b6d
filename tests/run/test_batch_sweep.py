"""Batch lists and the meaning of ``--train``: ``--batch 1,8,64`` gives a row per batch on
``layer`` and ``model`` (one parser, shared with any command that sweeps batches), a bad item
is one line and exit 2, and ``--train`` measures the training step *instead of* inference on
both commands, as a suite's ``mode: train`` does (``--mode both`` measures both)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from hilobench.cli.flags import parse_modes
from hilobench.core.case import MAX_BATCH, parse_batches
from hilobench.core.errors import ConfigError
from hilobench.core.row import is_measured

CliRunner = Callable[[list[str]], tuple[int, str, str]]
TINY = ["layer", "--attn", "msa", "--dim", "32", "--heads", "2", "--tokens", "4x4",
        "--budget", "0.05", "--no-roofline", "--format", "json"]  # fmt: skip


@pytest.mark.parametrize(
    "text, batches",
    [("64", [64]), ("1,8,64", [1, 8, 64]), (" 2 , 1 ", [2, 1]), ("4,4,2", [4, 2]), (3, [3])],
)
def test_batch_list_parses(text: str | int, batches: list[int]) -> None:
    assert parse_batches(text) == batches


@pytest.mark.parametrize("text", ["", "0", "-1", "1,,8", "8,x", "1.5", "2097152", "1e3", ",", "１"])
def test_bad_batch_list(text: str) -> None:
    with pytest.raises(ConfigError, match="batch"):
        parse_batches(text)


@pytest.mark.parametrize("bad", ["0", "1,x", "8,,16"])
def test_bad_batch_exits_2(bad: str, tmp_path: Path, cli: CliRunner) -> None:
    code, out, err = cli([*TINY, "--batch", bad, "--out", str(tmp_path / "r")])
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "batch" in err, err
    assert not (tmp_path / "r").exists()


def test_batch_list_gives_a_row_per_batch(tmp_path: Path, cli: CliRunner) -> None:
    code, out, err = cli([*TINY, "--batch", "1,2,4", "--out", str(tmp_path / "r")])
    assert code == 0, err
    rows = json.loads(out)
    assert [r["batch"] for r in rows] == [1, 2, 4]
    assert all(is_measured(r) and r["mode"] == "infer" for r in rows)
    assert len({r["case_key"] for r in rows}) == 3


def test_train_means_instead_of_inference(tmp_path: Path, cli: CliRunner) -> None:
    code, out, err = cli([*TINY, "--batch", "2", "--train", "--out", str(tmp_path / "a")])
    assert code == 0, err
    assert [r["mode"] for r in json.loads(out)] == ["train"]
    code, out, err = cli([*TINY, "--batch", "2", "--mode", "both", "--out", str(tmp_path / "b")])
    assert code == 0, err
    assert [r["mode"] for r in json.loads(out)] == ["infer", "train"]


def test_mode_choices_are_one_rule_for_both_commands(cli: CliRunner) -> None:
    assert parse_modes(False, "infer") == ["infer"]
    assert parse_modes(True, "infer") == ["train"]
    assert parse_modes(True, "train") == ["train"]
    assert parse_modes(False, "both") == ["infer", "train"]
    with pytest.raises(ConfigError, match="--train"):
        parse_modes(True, "both")
    with pytest.raises(ConfigError, match="mode"):
        parse_modes(False, "eval")
    for command in ("layer", "model"):
        code, out, _ = cli([command, "--help"])
        assert code == 0 and "instead of inference" in " ".join(out.split())


def test_suite_batch_list_expands_like_the_flag() -> None:
    from hilobench.suite.loader import parse_suite

    s = parse_suite(
        {
            "cases": [
                {
                    "layer": "msa",
                    "tokens": "4x4",
                    "dim": 32,
                    "heads": 2,
                    "batch": [1, 8, 64],
                    "mode": ["infer", "train"],
                }
            ]
        }  # fmt: skip
    )
    got = [(sc.case.mode, sc.case.batch) for sc in s.cases]
    # the same order as --mode both --batch 1,8,64: mode, then batch
    assert got == [(m, b) for m in parse_modes(False, "both") for b in parse_batches("1,8,64")]
    with pytest.raises(ConfigError, match="batch"):
        parse_suite({"cases": [{"layer": "msa", "batch": [1, MAX_BATCH + 1]}]})
