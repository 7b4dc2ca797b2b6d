"""One case builder for every measuring command: ``layer``, ``profile`` and ``--max-batch``
build the same cases from the same flags, in a suite's expansion order, and a flag declared
once reaches every command that takes it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import hilobench.cli.commands.profile as profile_cmd
import hilobench.cli.execute as measure
from hilobench.core.case import Case

CliRunner = Callable[[list[str]], tuple[int, str, str]]
SWEEP = ["--attn", "msa,hilo", "--res", "112,224", "--mode", "both", "--impl", "both",
         "--batch", "1,2", "--dim", "32", "--heads", "2"]  # fmt: skip


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Case]]:
    """The cases each command would measure or profile (nothing runs)."""
    got: dict[str, list[Case]] = {"measure": [], "profile": []}

    def execute(cases: list[Case], flags: Any, title: str) -> None:
        got["measure"].extend(cases)

    monkeypatch.setattr(measure, "execute", execute)
    monkeypatch.setattr(profile_cmd, "_run", lambda cases, *_: got["profile"].extend(cases))
    return got


def test_layer_and_profile_build_the_same_cases(
    cli: CliRunner, built: dict[str, list[Case]]
) -> None:
    assert cli(["layer", *SWEEP])[0] == 0
    assert cli(["profile", *SWEEP])[0] == 0
    layer, profiled = built["measure"], built["profile"]
    assert len(layer) == 2**5
    assert [c.key for c in layer] == [c.key for c in profiled]


def test_the_product_goes_in_a_suite_expansion_order(
    cli: CliRunner, built: dict[str, list[Case]]
) -> None:
    from hilobench.core.case import expand_impls
    from hilobench.suite.loader import parse_suite

    assert cli(["layer", *SWEEP, "--backend", "eager,compile"])[0] == 0
    s = parse_suite(
        {
            "cases": [
                {
                    "layer": ["msa", "hilo"],
                    "res": [112, 224],
                    "mode": ["infer", "train"],
                    "impl": expand_impls("both"),
                    "batch": [1, 2],
                    "backend": ["eager", "compile"],
                    "dim": 32,
                    "heads": 2,
                }
            ]
        }  # fmt: skip
    )
    assert len(built["measure"]) == len(s.cases) == 2**6
    assert [c.key for c in built["measure"]] == [sc.case.key for sc in s.cases]


def test_max_batch_searches_each_case_of_the_same_product(
    cli: CliRunner, built: dict[str, list[Case]]
) -> None:
    args = ["layer", "--attn", "msa,hilo", "--res", "112,224", "--dim", "32", "--heads", "2"]
    assert cli([*args, "--max-batch"])[0] == 0
    assert cli([*args, "--batch", "1"])[0] == 0
    searched, timed = built["measure"][:4], built["measure"][4:]
    assert searched == timed  # a search starts from batch 1 of the very same cases


@pytest.mark.parametrize("command", [["layer"], ["model", "pvt_s"], ["profile", "--attn", "msa"]])
def test_a_shared_flag_is_checked_alike_by_every_command(
    command: list[str], cli: CliRunner, built: dict[str, list[Case]]
) -> None:
    code, stdout, stderr = cli([*command, "--mode", "sideways"])
    assert code == 2 and stdout == ""
    (line,) = stderr.strip().splitlines()
    assert "sideways" in line and "infer" in line


def test_each_measuring_command_keeps_its_own_default_budget(
    cli: CliRunner, built: dict[str, list[Case]]
) -> None:
    assert cli(["layer", "--attn", "msa", "--dim", "32", "--heads", "2"])[0] == 0
    assert cli(["model", "pvt_s"])[0] == 0
    assert cli(["layer", "--attn", "msa", "--budget", "0.5"])[0] == 0
    assert [c.budget for c in built["measure"]] == [3.0, 5.0, 0.5]
