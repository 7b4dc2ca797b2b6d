"""Which entry point a revision's gate side is started with: this layout's, or the older one."""

from __future__ import annotations

from pathlib import Path

from hilobench.gate.worktree import SIDE_ENTRIES, side_entry


def test_a_revision_of_this_layout_runs_its_gate_side_module(tmp_path: Path) -> None:
    assert side_entry(tmp_path) is None  # not a hilobench checkout
    old = tmp_path / "hilobench" / "worker.py"
    old.parent.mkdir(parents=True)
    old.write_text("")
    assert side_entry(tmp_path) == "hilobench.worker"  # before the package layout
    new = tmp_path / "hilobench" / "gate" / "side_worker.py"
    new.parent.mkdir()
    new.write_text("")
    assert side_entry(tmp_path) == "hilobench.gate.side_worker" == SIDE_ENTRIES[0][1]


def test_this_checkout_has_the_entry_it_names() -> None:
    root = Path(__file__).resolve().parents[2]
    assert side_entry(root) == "hilobench.gate.side_worker"
