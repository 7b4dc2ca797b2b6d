"""Shared test helpers."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hilobench.cli import main

CliRunner = Callable[[list[str]], tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """Run ``hilobench ARGS`` in-process; return (exit code, stdout, stderr)."""

    def run(args: list[str]) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main(args)
        captured = capsys.readouterr()
        return int(exc.value.code or 0), captured.out, captured.err

    return run
