"""The wheel carries the suites and the paper's data: an installed hilobench needs no checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITES = sorted(p.name for p in (ROOT / "hilobench" / "data" / "suites").glob("*.yaml"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "--wheel-dir", str(out), str(ROOT)],
        check=True, capture_output=True, timeout=300, cwd=build,
    )  # fmt: skip
    (whl,) = out.glob("hilobench-*.whl")
    return whl


def test_wheel_contains_suites_and_paper_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert len(SUITES) == 7  # runtimes.yaml among them
    for s in SUITES:
        assert f"hilobench/data/suites/{s}" in names
    for f in ("attention_layers.csv", "imagenet_table.csv", "dense_fps.csv", "other_gpus.csv"):
        assert f"hilobench/data/paper/{f}" in names


def test_installed_package_lists_its_suites_outside_the_checkout(
    wheel: Path, tmp_path: Path
) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        "import hilobench, sys; print(hilobench.__file__); "
        "from hilobench.cli.app import main; main(sys.argv[1:])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "suite", "list"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith(str(target))  # the installed copy ran
    for s in SUITES:
        assert s.removesuffix(".yaml") in proc.stdout
