"""One plug-in policy for attentions and models: a broken installed entry point is skipped
with a warning naming it (the built-ins stay usable), a broken ``--plugin FILE`` is one line
and exit 2, and ``hilobench model --plugin FILE`` measures a model the file registers (in a
fresh worker too, which loads the file again).

Plug-in files run in subprocesses: a registration lasts as long as its process, and the rest
of the session must keep seeing only the built-in attentions and models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from hilobench.core import plugins
from hilobench.core.row import is_measured

ROOT = Path(__file__).resolve().parents[2]

MODEL_PLUGIN = """
from torch import nn
from hilobench.models.registry import ModelEntry, register_model

def build(res, impl, num_classes, **kw):
    h, w = res
    head = nn.Linear(8 * (h // 4) * (w // 4), num_classes)
    return nn.Sequential(nn.Conv2d(3, 8, 4, stride=4), nn.Flatten(1), head)

register_model(ModelEntry("tiny_plug", "Tiny plug", "plug", "hilobench", build, 32))
"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != plugins.PLUGINS_ENV}


@pytest.mark.parametrize("group", ["hilobench.attentions", "hilobench.models"])
def test_a_broken_entry_point_is_skipped_with_one_warning_in_both_groups(
    group: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ep = EntryPoint("broken", "no_such_module_xyz:thing", group)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [ep])
    monkeypatch.setattr(plugins, "_groups_loaded", set())
    monkeypatch.delenv(plugins.PLUGINS_ENV, raising=False)
    with pytest.warns(plugins.PluginWarning, match=rf"{group} plug-in 'broken'.*ModuleNotFound"):
        if group == "hilobench.attentions":
            from hilobench.attention.registry import available_attentions

            assert "hilo" in available_attentions()  # the built-ins are still there
        else:
            from hilobench.models.registry import get_model

            assert get_model("litv2_s").name == "litv2_s"


def test_an_attention_entry_point_may_load_to_an_entry_as_a_model_one_may(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import copy

    from hilobench.attention import registry
    from hilobench.attention.msa import MultiHeadSelfAttention
    from hilobench.core import options

    registry.available_attentions()  # the built-ins first, so the copies below hold them
    monkeypatch.setattr(registry.ATTENTIONS, "entries", dict(registry.ATTENTIONS.entries))
    monkeypatch.setattr(options, "_TAKERS", copy.deepcopy(options._TAKERS))
    entry = registry.AttentionEntry(
        "plug_attn", MultiHeadSelfAttention, "MSA, as a plug-in", ("window",), {"window": 5}
    )
    ep = EntryPoint("plug", "plugmod:entry", "hilobench.attentions")
    monkeypatch.setattr(EntryPoint, "load", lambda self: lambda: [entry])
    monkeypatch.setattr(plugins, "entry_points", lambda group: [ep])
    monkeypatch.setattr(plugins, "_groups_loaded", set())
    monkeypatch.delenv(plugins.PLUGINS_ENV, raising=False)
    assert registry.get_attention("plug_attn") is entry
    assert options.takes("layer", "plug_attn", "window")  # its knobs are in the table


def test_a_broken_plugin_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('boom')\n")
    for cmd in (["model", "litv2_s"], ["layer", "--attn", "hilo"]):
        proc = subprocess.run([sys.executable, "-m", "hilobench", *cmd, "--plugin", str(bad)],
                              cwd=ROOT, env=_env(), capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert "bad.py" in proc.stderr and "boom" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_model_plugin_file_is_measured_here_and_in_workers(tmp_path: Path) -> None:
    plug = tmp_path / "plug.py"
    plug.write_text(MODEL_PLUGIN)
    cmd = [sys.executable, "-m", "hilobench", "model", "tiny_plug", "--plugin", str(plug),
           "--batch", "1", "--budget", "0.05", "--no-roofline", "--format", "json",
           "--out", str(tmp_path / "r")]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert row["name"] == "tiny_plug" and is_measured(row), row.get("message")
    assert row["res"] == "32" and row["throughput_median"] > 0
    # a suite names it through `plugins:`; its cases run in fresh workers, which load the file
    (tmp_path / "s.yaml").write_text(
        "name: s\nplugins: [plug.py]\ndefaults: {batch: 1, budget: 0.05}\n"
        "cases:\n  - model: tiny_plug\n"
    )
    cmd = [sys.executable, "-m", "hilobench", "suite", "run", str(tmp_path / "s.yaml"),
           "--no-roofline", "--format", "json", "--out", str(tmp_path / "s")]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert row["name"] == "tiny_plug" and is_measured(row) and row["isolated"] is True
