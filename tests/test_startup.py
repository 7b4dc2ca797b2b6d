"""Each command imports only what it needs: timm, scipy, matplotlib, submitit slow start-up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("timm", "scipy", "matplotlib", "submitit")

SCRIPT = """
import json, sys
from hilobench.cli.app import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "loaded": [m for m in %r if m in sys.modules]}))
"""


def _loaded(args: list[str]) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT % (HEAVY,), *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["code"] in (0, None), proc.stderr
    return list(result["loaded"])


def test_layer_run_imports_no_heavy_library(tmp_path: Path) -> None:
    args = ["layer", "--attn", "hilo", "--dim", "32", "--heads", "2", "--tokens", "8x8",
            "--batch", "1", "--budget", "0.05", "--no-roofline", "--out", str(tmp_path / "r"),
            "--format", "csv"]  # fmt: skip
    assert _loaded(args) == []


def test_model_run_of_our_own_backbone_imports_no_timm(tmp_path: Path) -> None:
    args = ["model", "pvt_s", "--res", "64", "--batch", "1", "--budget", "0.05",
            "--no-roofline", "--out", str(tmp_path / "r"), "--format", "csv"]  # fmt: skip
    assert _loaded(args) == []


def test_listing_commands_stay_light() -> None:
    assert _loaded(["suite", "list"]) == []
    assert _loaded(["--help"]) == []
