"""The run session's one rule set for a run directory (new, --append, --resume, --force-resume),
the same for ``layer`` and ``suite run``, and its stop signals: SIGTERM or Ctrl-C during a run
exits 143 / 130 with the finished rows and their tables kept, and outside a run the same
mechanism ends the command with 143."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hilobench.core.errors import ConfigError
from hilobench.measure.env import code_state
from hilobench.run.dircheck import MODES, check_run_dir, mode_of
from hilobench.run.lock import LOCK_NAME
from hilobench.store.writer import RunDir, load_rows

CliRunner = Callable[[list[str]], tuple[int, str, str]]
ROOT = Path(__file__).resolve().parents[2]
ENV = {"cpu_model": "CPU A", "cpu_physical_cores": 2, "torch": "2.6.0", "threads": 2,
       "dtype": "float32"}  # fmt: skip
LAYER = ["layer", "--attn", "msa,hilo,sra", "--dim", "32", "--heads", "2", "--tokens", "7x7",
         "--batch", "1", "--budget", "0.05", "--no-roofline"]  # fmt: skip


def a_run(tmp_path: Path, **row: Any) -> RunDir:
    """A run directory holding one row of suite ``s`` measured by this code on ``ENV``."""
    run = RunDir(tmp_path / "run").create(ENV)
    base = {"case_key": "k1", "status": "ok", "suite": "s", "suite_hash": "h" * 16}
    run.append({**base, **code_state(exclude=[run.path]), **row})
    return run


def test_the_flags_pick_one_mode() -> None:
    assert mode_of() is MODES["new"] and mode_of(append=True) is MODES["append"]
    assert mode_of(resume=True) is MODES["resume"]
    assert mode_of(resume=True, force_resume=True) is MODES["force-resume"]
    assert mode_of(force_resume=True) is MODES["force-resume"]


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_takes_a_directory_without_rows(tmp_path: Path, mode: str) -> None:
    run = RunDir(tmp_path / "empty").create(ENV)
    assert check_run_dir(run, ENV, MODES[mode]) == []


@pytest.mark.parametrize("offer", ["--append", "--resume"])
def test_rows_of_another_run_are_refused_naming_the_flag_to_add(tmp_path: Path, offer: str) -> None:
    run = a_run(tmp_path)
    with pytest.raises(ConfigError, match=f"1 row.*{offer}.*another --out"):
        check_run_dir(run, ENV, MODES["new"], offer=offer)
    assert len(load_rows(run.path)) == 1


@pytest.mark.parametrize("mode", ["append", "resume", "force-resume"])
def test_no_mode_mixes_machine_classes(tmp_path: Path, mode: str) -> None:
    run = a_run(tmp_path)
    other = dict(ENV, cpu_model="CPU B")
    with pytest.raises(ConfigError, match="another machine class.*cpu_model"):
        check_run_dir(run, other, MODES[mode], suite="s", digest="h" * 16)
    # threads and dtype are per row: another value of them is the same machine class
    same = dict(ENV, threads=8, dtype="bfloat16")
    assert len(check_run_dir(run, same, MODES[mode], suite="s", digest="h" * 16)) == 1


@pytest.mark.parametrize(
    ("row", "named"),
    [({"suite": "other"}, "suite"), ({"suite_hash": "0" * 16}, "suite_hash"),
     ({"hilobench_version": "0.0.0-other", "git_commit": None}, "hilobench_version")],
)  # fmt: skip
def test_resume_refuses_rows_of_another_suite_or_code_unless_forced(
    tmp_path: Path, row: dict[str, Any], named: str
) -> None:
    run = a_run(tmp_path, **row)
    with pytest.raises(ConfigError, match=f"{named}.*--force-resume"):
        check_run_dir(run, ENV, MODES["resume"], suite="s", digest="h" * 16)
    for mode in ("force-resume", "append"):  # forced, or adding rows of another run on purpose
        assert len(check_run_dir(run, ENV, MODES[mode], suite="s", digest="h" * 16)) == 1


def test_layer_and_suite_refuse_a_directory_in_the_same_words(
    tmp_path: Path, cli: CliRunner
) -> None:
    out = a_run(tmp_path).path
    suite = tmp_path / "t.yaml"
    suite.write_text("name: t\ndefaults: {batch: 1, dim: 32, heads: 2}\ncases:\n  - layer: msa\n")
    said = []
    for args, offer in ((LAYER, "--append"), (["suite", "run", str(suite)], "--resume")):
        code, stdout, stderr = cli([*args, "--out", str(out)])
        assert code == 2 and stdout == "", stderr
        (line,) = stderr.strip().splitlines()
        assert offer in line and "already holds 1 row(s) of another run" in line
        said.append(line.replace(offer, "FLAG"))
    assert said[0].split(";")[0] == said[1].split(";")[0]
    assert len(load_rows(out)) == 1 and not (out / LOCK_NAME).exists()


def test_a_new_directory_gets_the_environment_rows_and_tables(
    tmp_path: Path, cli: CliRunner
) -> None:
    out = tmp_path / "new" / "run"
    code, stdout, stderr = cli([*LAYER, "--attn", "msa", "--out", str(out), "--format", "json"])
    assert code == 0, stderr
    (row,) = json.loads(stdout)
    env = json.loads((out / "env.json").read_text())
    assert row["env_id"] == env["env_id"] and load_rows(out) == [row]
    assert (out / "results.csv").is_file() and not (out / LOCK_NAME).exists()


# A run that sends itself the signal as its second case starts: deterministic, no sleeps.
SIGNAL_SELF = """
import os, signal, sys
import hilobench.run.runner as runner
from hilobench.cli.app import main

sig = getattr(signal, sys.argv[1])
started = []
measure = runner.Runner._unit

def unit(self, u):
    started.append(u)
    if len(started) == 2:
        os.kill(os.getpid(), sig)
    return measure(self, u)

runner.Runner._unit = unit
sys.argv = ["hilobench", *sys.argv[2:]]
main()
"""


@pytest.mark.parametrize(("sig", "code"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_during_a_run_keeps_the_rows_and_exits_128_plus_it(
    tmp_path: Path, sig: str, code: int
) -> None:
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", SIGNAL_SELF, sig, *LAYER, "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == code, proc.stderr
    rows = load_rows(out)
    assert [r["name"] for r in rows] == ["msa"]
    assert len((out / "results.csv").read_text().strip().splitlines()) == 2
    assert f"1 of 3 cases measured, rows in {out}" in proc.stderr
    assert "Traceback" not in proc.stderr and not (out / LOCK_NAME).exists()


# SIGTERM while the command line is being read: no run yet, the same mechanism ends it.
SIGNAL_EARLY = """
import os, signal, sys
import hilobench.cli.app as app

def load(paths):
    os.kill(os.getpid(), signal.SIGTERM)

app.load_plugins = load
sys.argv = ["hilobench", "suite", "list"]
app.main()
"""


def test_sigterm_outside_a_run_exits_143() -> None:
    proc = subprocess.run([sys.executable, "-c", SIGNAL_EARLY], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 143, proc.stderr
    assert proc.stderr.strip() == "terminated"
