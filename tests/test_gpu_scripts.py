"""The prepared GPU session script and vs_timm.py, checked without a GPU: the script parses,
names every step the GPU session needs, bounds each with a timeout and all of them within 9
minutes; vs_timm refuses bad input in one line and judges agreement by its tolerance."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_session.sh"


def _print_plan() -> str:
    env = {**os.environ, "MODE": "print", "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_session_script_parses_and_plans_every_step_within_nine_minutes() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=30)
    plan = _print_plan()
    steps = re.findall(r"^\[(\S+), ≤(\d+)s\] (.*)$", plan, flags=re.M)
    names = {s[0] for s in steps}
    for dtype in ("float32", "tf32", "float16"):
        assert f"layers_{dtype}" in names and f"imagenet_{dtype}" in names
    assert {"layers_graphs_float32", "layers_graphs_float16", "vs_timm", "pytest_cuda"} <= names
    assert {f"profile_{m}" for m in ("litv2_s", "pvt_s", "swin_t", "resnet50")} <= names
    assert sum(int(s[1]) for s in steps) <= 9 * 60
    assert all("--device cuda" in s[2] for s in steps if s[0] != "pytest_cuda")
    assert "results/gpu_<card>/" in plan
    # every step goes through the one runner, which bounds it with timeout
    text = SCRIPT.read_text()
    assert 'timeout -s TERM -k 5 "$t" "$@"' in text
    assert all(line.lstrip().startswith(("step ", "[", "&&", "BUDGET")) or "step " in line
               for line in text.splitlines() if "$(suite " in line)  # fmt: skip


def test_session_script_refuses_an_unknown_mode() -> None:
    env = {**os.environ, "MODE": "fast"}
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and "MODE must be" in proc.stderr


def _vs_timm() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vs_timm", ROOT / "benchmarks" / "vs_timm.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["--models", "resnet50,vgg"], "unknown model 'vgg'"),
        (["--dtype", "tf32"], "'tf32' is a CUDA"),
        (["--dtype", "float64"], "unknown dtype"),
    ],
)
def test_vs_timm_refuses_bad_input(argv: list[str], word: str, capsys) -> None:  # type: ignore[no-untyped-def]
    vs = _vs_timm()
    assert vs.main(argv) == 2
    err = capsys.readouterr().err
    assert word in err and len(err.strip().splitlines()) == 1


def test_vs_timm_table_line_and_models() -> None:
    vs = _vs_timm()
    assert set(vs.MODELS) == {"resnet50", "swin_t", "convnext_t", "pvtv2_b2"}
    row = {"model": "resnet50", "timm_model": "resnet50", "timm_img_s_before_after": [10.0, 12.0],
           "hilobench_img_s": 11.5, "ratio": 11.5 / 11.0, "within_tolerance": True}  # fmt: skip
    assert vs._line(row) == "| resnet50 | resnet50 | 10.00 / 12.00 | 11.50 | 1.045 | yes |"
