"""The attention zoo joined to the rest: the ``fused_is_reference`` row column, plug-in files
(``--plugin``), the suite's new cases and the paper side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hilobench.core.row import is_measured

CliRunner = Callable[[list[str]], tuple[int, str, str]]

TINY = ["--tokens", "8x8", "--batch", "1", "--budget", "0.05", "--no-roofline"]
TINY_LAYER = ["--dim", "32", "--heads", "2", *TINY]


def fused_row(cli: CliRunner, tmp_path: Path, attn: str) -> dict[str, object]:
    args = ["layer", "--attn", attn, "--impl", "fused", *TINY_LAYER]
    code, stdout, stderr = cli([*args, "--out", str(tmp_path / attn), "--format", "json"])
    assert code == 0, stderr
    (row,) = json.loads(stdout)
    assert is_measured(row) and row["impl"] == "fused"
    return dict(row)


@pytest.mark.parametrize(
    ("attn", "expected"),
    [
        ("performer", True),
        ("van", True),
        ("hornet", True),
        ("msa", False),
    ],
)
def test_fused_row_says_whether_it_is_the_reference_path(
    attn: str, expected: bool, tmp_path: Path, cli: CliRunner
) -> None:
    assert fused_row(cli, tmp_path, attn)["fused_is_reference"] is expected


def test_fused_is_reference_is_part_of_the_contract() -> None:
    from hilobench.attention import Attention, available_attentions, get_attention

    assert Attention.fused_is_reference is False
    for name in available_attentions():
        builder = get_attention(name).builder
        if isinstance(builder, type):
            assert isinstance(builder.fused_is_reference, bool), name


PLUGIN = """
from torch import nn

from hilobench.core import options
from hilobench.attention import Attention, register_attention

KNOB = options.Knob("mine_knob", "int", "Mine: a factor on the output.", minimum=1)


@register_attention("mine", "a tiny plug-in attention", knobs={KNOB: 1})
class Mine(Attention):
    def __init__(self, dim, num_heads, qkv_bias=True, impl="reference", mine_knob=1):
        super().__init__(dim, num_heads, qkv_bias, impl)
        self.proj = nn.Linear(dim, dim, bias=False)
        self.mine_knob = mine_knob

    def forward(self, x, H, W):
        return self.proj(x) * self.mine_knob

    def macs(self, H, W):
        return H * W * self.dim * self.dim
"""


def run_hilobench(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A fresh process: a plug-in registers for good, so it stays out of the test process."""
    env = {k: v for k, v in os.environ.items() if k != "HILOBENCH_PLUGINS"}
    return subprocess.run(
        [sys.executable, "-m", "hilobench", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
    )


def test_plugin_file_registers_an_attention_with_its_knob(tmp_path: Path) -> None:
    plugin = tmp_path / "my_attn.py"
    plugin.write_text(PLUGIN)
    args = ["layer", "--plugin", str(plugin), "--attn", "mine", "--mine-knob", "3"]
    args += [*TINY_LAYER, "--out", str(tmp_path / "run"), "--format", "json"]
    proc = run_hilobench(args, tmp_path)
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert is_measured(row) and row["attention"] == "mine"
    assert row["options"]["mine_knob"] == 3
    assert row["macs"] == row["macs_traced"] == 64 * 32 * 32
    assert row["fused_is_reference"] is False

    # a suite names it through `plugins:` (relative to the suite file), each case isolated
    (tmp_path / "mine.yaml").write_text(
        "name: mine\nplugins: [my_attn.py]\n"
        "defaults: {dim: 32, heads: 2, tokens: 8x8, batch: 1, budget: 0.05}\n"
        "cases:\n  - layer: mine\n    mine_knob: 2\n"
    )
    suite = ["suite", "run", str(tmp_path / "mine.yaml"), "--no-roofline", "--format", "json"]
    proc = run_hilobench([*suite, "--out", str(tmp_path / "suite")], tmp_path)
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert is_measured(row) and row["options"]["mine_knob"] == 2 and row["isolated"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (None, "no such file"),
        ("def broken(:\n", "syntax error on line 1"),
        ("raise RuntimeError('boom')\n", "failed: RuntimeError: boom"),
    ],
)
def test_broken_plugin_is_one_line_and_exit_2(
    text: str | None, says: str, tmp_path: Path, cli: CliRunner
) -> None:
    plugin = tmp_path / "bad_plugin.py"
    if text is not None:
        plugin.write_text(text)
    for command in (["layer", "--attn", "msa"], ["suite", "run", "ci_smoke"]):
        code, stdout, stderr = cli([*command, "--plugin", str(plugin), *TINY])
        assert code == 2, stderr
        assert stdout == ""
        assert stderr.count("\n") == 1 and "bad_plugin.py" in stderr and says in stderr


def test_broken_suite_plugin_names_the_field_and_file(tmp_path: Path, cli: CliRunner) -> None:
    (tmp_path / "s.yaml").write_text("plugins: [gone.py]\ncases:\n  - layer: msa\n")
    code, _, stderr = cli(["suite", "validate", str(tmp_path / "s.yaml")])
    assert code == 2
    assert stderr.count("\n") == 1 and "field 'plugins'" in stderr and "gone.py" in stderr


#: The paper's single-layer table names → ours.
PAPER_NAMES = {
    "MSA": "msa", "SRA": "sra", "Local Window": "wmsa", "Shifted Window": "swmsa",
    "HiLo": "hilo", "Cross Window": "cswin", "DAT": "dat", "Performer": "performer",
    "Linformer": "linformer", "Focal": "focal", "XCA": "xca", "VAN": "van",
    "QuadTree": "quadtree", "HorNet": "hornet",
}  # fmt: skip


def test_paper_side_by_side_maps_every_registered_paper_attention() -> None:
    from hilobench.attention import available_attentions
    from hilobench.core.frame import read_csv
    from hilobench.report.paper import PAPER_ATTENTIONS, PAPER_DIR, layer_side_by_side

    paper = read_csv(PAPER_DIR / "attention_layers.csv")["attention"]
    assert set(paper) == set(PAPER_NAMES), "a paper row without a known name of ours"
    registered = set(available_attentions())
    ours = {PAPER_NAMES[p] for p in paper} & registered
    assert ours >= {"msa", "cswin", "dat", "performer", "linformer", "focal", "xca", "van"}
    for name in ours:
        assert PAPER_ATTENTIONS.get(name) == {v: k for k, v in PAPER_NAMES.items()}[name], name

    # each of them gets its ratio to MSA beside the paper's
    rows = [
        {"kind": "layer", "name": n, "attention": n, "impl": "reference", "mode": "infer",
         "tokens": "14x14", "batch": 64, "dtype": "float32", "device": "cpu", "env_id": "e",
         "status": "ok", "case_key": n, "throughput_median": 100.0 + i, "params": 1, "macs": 1}
        for i, n in enumerate(sorted(ours))
    ]  # fmt: skip
    df = layer_side_by_side(rows)
    assert df is not None and set(df["attention"]) == ours
    assert all(v is not None for v in df["paper_x_msa"] + df["x_msa"])
