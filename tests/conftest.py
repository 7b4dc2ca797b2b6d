"""Shared test helpers."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from hilobench.cli.app import main

CliRunner = Callable[[list[str]], tuple[int, str, str]]


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never read or write the user's cache; they share one of their own (subprocesses
    inherit it), so the GEMM peak is measured once per test session."""
    os.environ["HILOBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """Run ``hilobench ARGS`` in-process; return (exit code, stdout, stderr)."""

    def run(args: list[str]) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main(args)
        captured = capsys.readouterr()
        return int(exc.value.code or 0), captured.out, captured.err

    return run
