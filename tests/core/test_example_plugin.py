"""The README's bring-your-own-attention example runs as documented.

Run in subprocesses: a plug-in registers its attention for the life of the process, and the
rest of the test session must keep seeing only the built-in layers.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from hilobench.core.row import is_measured

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "pooled_attention.py"


def _readme_command() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    (line,) = re.findall(r"^hilobench layer --plugin docs/examples/\S+.*$", text, re.M)
    return shlex.split(line)[1:]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "HILOBENCH_PLUGINS"}


def test_readme_plugin_command_measures_the_example(tmp_path: Path) -> None:
    args = _readme_command()
    assert args[:2] == ["layer", "--plugin"]
    extra = ["--batch", "1", "--budget", "0.05", "--impl", "both", "--no-roofline",
             "--out", str(tmp_path / "r"), "--format", "json"]  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "hilobench", *args, *extra], cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=180)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["impl"] for r in rows] == ["reference", "fused"]
    for r in rows:
        assert is_measured(r) and r["macs"] == r["macs_traced"] and not r["uncounted_ops"]


CHECK = """
import sys, torch
from hilobench.attention import build_attention, set_impl
from hilobench.attention.registry import load_plugin_file
from hilobench.core.errors import ConfigError
load_plugin_file(sys.argv[1])
torch.manual_seed(0)
layer = build_attention("pooled", 64, 4, pool=2).eval()
x = torch.randn(2, 15 * 13, 64)
with torch.no_grad():
    ref = layer(x, 15, 13)
    fused = set_impl(layer, "fused")(x, 15, 13)
assert torch.allclose(ref, fused, rtol=1e-5, atol=1e-6), (ref - fused).abs().max()
try:
    build_attention("pooled", 64, 4, pool=4).macs(3, 3)
except ConfigError as e:
    assert "larger than the 3x3 token map" in str(e)
else:
    raise AssertionError("a pool larger than the map was accepted")
print("ok")
"""


def test_example_paths_agree_and_refuse_a_too_large_pool() -> None:
    proc = subprocess.run([sys.executable, "-c", CHECK, str(EXAMPLE)], env=_env(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
