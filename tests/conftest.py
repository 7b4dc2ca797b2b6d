"""Shared test helpers, and the one list of slow tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from hilobench.cli.app import main

CliRunner = Callable[[list[str]], tuple[int, str, str]]

TESTS = Path(__file__).resolve().parent
#: The tests that take more than a few seconds (``-m "not slow"`` leaves them out), as
#: ``file::function`` under tests/: the one place that marks a test slow.
SLOW = frozenset({
    "backends/test_backends.py::test_fused_layers_export_exactly",
    "backends/test_backends.py::test_onnxruntime_exports_deformable_merging_exactly",
    "backends/test_backends.py::test_runtime_rows_measured_with_parity",
    "backends/test_backends.py::test_unsupported_op_is_a_row_and_the_next_case_runs",
    "cli/test_hardening_inputs.py::test_sigterm_during_gate_removes_worktree_and_temp_dirs",
    "cli/test_hardening_inputs.py::test_sigterm_during_layer_keeps_rows_and_tables",
    "cluster/test_cluster_local.py::test_a_failed_job_becomes_failure_rows_and_groups_stay_in_one_job",
    "cluster/test_cluster_local.py::test_a_job_stopped_from_outside_is_resubmitted_then_left_open_for_resume",
    "cluster/test_cluster_local.py::test_ci_smoke_on_the_local_executor_gives_the_plain_runners_cases",
    "cluster/test_cluster_local.py::test_launcher_stopped_then_killed_then_resumed_loses_and_repeats_nothing",
    "cluster/test_cluster_local.py::test_slurm_executor_against_a_fake_slurm",
    "gate/test_compare_across.py::test_a_case_interleaved_across_backends",
    "gate/test_gate.py::test_gate_runs_each_revision_own_code",
    "gate/test_gate.py::test_gate_same_code_passes",
    "gate/test_gate_engine.py::test_base_without_the_gate_job_exit_3",
})  # fmt: skip


def node_name(item: Any) -> str:
    """``file::function`` of a collected test, parameters left out, as :data:`SLOW` lists it."""
    return f"{Path(item.path).relative_to(TESTS).as_posix()}::{item.originalname}"


def missing_slow(items: Iterable[Any], slow: Iterable[str] = SLOW) -> list[str]:
    """The listed slow tests that the files collected here do not define (renamed, removed)."""
    modules = {node_name(i).split("::")[0]: i.module for i in items if hasattr(i, "module")}
    return sorted(
        s
        for s in slow
        if (f := s.split("::")[0]) in modules and not hasattr(modules[f], s[len(f) + 2 :])
    )


@pytest.hookimpl(tryfirst=True)  # before -m reads the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gone = missing_slow(items)
    if gone:
        raise pytest.UsageError(f"tests/conftest.py SLOW lists tests that do not exist: {gone}")
    for item in items:
        if hasattr(item, "originalname") and node_name(item) in SLOW:
            item.add_marker(pytest.mark.slow)


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
