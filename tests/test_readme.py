"""The README stays true to the code: every row status is explained, every exit code of
`compare`/`gate` is listed, and the quick start fits 15 lines."""

from __future__ import annotations

import re
from pathlib import Path

from hilobench.core.row import STATUSES
from hilobench.gate import verdict

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> list[str]:
    lines = README.splitlines()
    start = lines.index(title)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("#"))
    return lines[start:end]


def test_every_status_is_in_the_status_table() -> None:
    table = [x for x in README.splitlines() if x.startswith("| `")]
    listed = {m.group(1) for x in table if (m := re.match(r"\| `([^`]+)` \|", x))}
    assert set(STATUSES) <= listed, sorted(set(STATUSES) - listed)


def test_every_exit_code_is_listed() -> None:
    codes = {v for k, v in vars(verdict).items() if k.startswith("EXIT_")}
    text = " ".join(x.strip() for x in README.splitlines())
    sentence = text[text.index("Exit codes:") :].split(" ([docs/gate.md]")[0]
    for code in codes:
        assert f" {code} " in sentence, (code, sentence)


def test_quick_start_fits_15_lines() -> None:
    lines = _section("## Quick start")
    while lines and not lines[-1].strip():
        lines.pop()
    assert len(lines) <= 15, len(lines)
    assert any(x.startswith("pip install") for x in lines)
    assert any("hilobench layer" in x for x in lines) and any("hilobench model" in x for x in lines)
