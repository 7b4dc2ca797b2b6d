"""Suite files cannot exhaust the machine: nested aliases ("billion laughs") and list products
are sized before anything is expanded, and refused with one line and exit 2, in well under a
second and without memory to speak of, by `suite list`, `suite validate` and `suite run`."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from hilobench.core.errors import ConfigError, SuiteLimitError
from hilobench.suite import expand as suite_expand
from hilobench.suite.expand import MAX_CASES
from hilobench.suite.loader import load_suite, parse_suite
from hilobench.suite.yaml_limits import MAX_SUITE_BYTES, read_yaml

ROOT = Path(__file__).resolve().parents[2]
SUITES = ROOT / "suites"


def billion_laughs(path: Path) -> Path:
    """9 levels of 9 aliases to the level below: 9^9 values from a 400-byte file."""
    levels = ["&l1 [" + ", ".join(["224"] * 9) + "]"]
    for n in range(2, 10):
        levels.append(f"&l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]")
    path.write_text("name: laughs\ncases:\n  - layer: msa\n    res: [" + ", ".join(levels) + "]\n")
    return path


def billion_cases(path: Path) -> Path:
    """Three lists of 1000 values on one case: 10^9 cases from a 15 kB file."""

    def values(fmt: str) -> str:
        return "[" + ", ".join(fmt.format(i + 1) for i in range(1000)) + "]"

    path.write_text(
        "name: huge\ncases:\n  - layer: msa\n"
        f"    res: {values('{}')}\n    batch: {values('{}')}\n    budget: {values('{}.5')}\n"
    )
    return path


CASES = {
    "laughs": (billion_laughs, ["expands to 490,329,064", "YAML nodes", "limit is 100,000"]),
    "cases": (billion_cases, ["1,000,000,000 cases", "limit is 10,000"]),
}


@pytest.mark.parametrize("kind", sorted(CASES))
@pytest.mark.parametrize("command", ["list", "validate", "run"])
def test_refused_fast_with_one_line(cli, tmp_path: Path, kind: str, command: str) -> None:
    make, needles = CASES[kind]
    folder = tmp_path / "suites"
    folder.mkdir()
    path = make(folder / f"{kind}.yaml")
    out = tmp_path / "run"
    args = {
        "list": ["suite", "list", "--dir", str(folder)],
        "validate": ["suite", "validate", str(path)],
        "run": ["suite", "run", str(path), "--out", str(out)],
    }[command]
    t0 = time.perf_counter()
    code, stdout, stderr = cli(args)
    took = time.perf_counter() - t0
    assert code == 2, stderr
    assert took < 10, f"took {took:.1f} s"
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0], stderr
    for needle in needles:
        assert needle in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("kind", sorted(CASES))
def test_peak_memory_of_a_refusal(tmp_path: Path, kind: str) -> None:
    """Measured in a fresh parent, whose only child is the refused command."""
    path = CASES[kind][0](tmp_path / f"{kind}.yaml")
    probe = textwrap.dedent(
        f"""
        import resource, subprocess, sys
        cmd = [sys.executable, "-m", "hilobench", "suite", "validate", {str(path)!r}]
        rc = subprocess.run(cmd, capture_output=True).returncode
        print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        """
    )
    res = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    rc, maxrss_kb = map(int, res.stdout.split())
    assert rc == 2
    assert maxrss_kb * 1024 < 500 * 2**20, f"peak {maxrss_kb / 1024:.0f} MB"


def test_other_oversized_files(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("description: " + "x" * MAX_SUITE_BYTES + "\n")
    with pytest.raises(SuiteLimitError, match="larger than 1,000,000 bytes"):
        load_suite(big)
    loop = tmp_path / "loop.yaml"
    loop.write_text("cases: &a [*a]\n")
    with pytest.raises(SuiteLimitError, match="refers to itself"):
        load_suite(loop)
    long = tmp_path / "long.yaml"  # few nodes, but 10 copies of a 300 kB string
    long.write_text(
        "cases:\n  - layer: msa\n    res: [&s "
        + "x" * 300_000
        + ", "
        + ", ".join(["*s"] * 10)
        + "]\n"
    )
    with pytest.raises(SuiteLimitError, match="3,300,0.. characters"):
        load_suite(long)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_suite(binary)


@pytest.mark.parametrize("path", sorted(SUITES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_suites_read_as_before(path: Path) -> None:
    assert read_yaml(path) == yaml.safe_load(path.read_text(encoding="utf-8"))


def test_count_is_exact_where_options_apply_to_some_layers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``alpha`` only drives HiLo: 3 alphas x 2 res for hilo + 2 res for msa = 8 cases, not 12."""
    data = {
        "defaults": {"dim": 64, "heads": 4},
        "cases": [{"layer": ["hilo", "msa"], "alpha": [0.5, 0.7, 0.9], "res": [224, 256]}],
    }
    monkeypatch.setattr(suite_expand, "MAX_CASES", 8)
    assert len(parse_suite(data).cases) == 8
    monkeypatch.setattr(suite_expand, "MAX_CASES", 7)
    with pytest.raises(SuiteLimitError, match="expands to 8 cases .*the limit is 7"):
        parse_suite(data)


def test_limit_counts_all_entries_and_overrides() -> None:
    data = {"cases": [{"layer": "msa", "res": list(range(1, 101))}, {"layer": "sra"}]}
    assert len(parse_suite(data).cases) == 101
    with pytest.raises(SuiteLimitError, match=f"expands to 10,100 cases .*limit is {MAX_CASES:,}"):
        parse_suite(data, overrides={"batch": list(range(1, 101))})


def test_hex_octal_and_base60_numbers_are_not_integers(tmp_path: Path, cli) -> None:
    """``tokens: 0x5`` is a typo for a 0x5 map, not the hex integer 5."""
    from hilobench.suite.yaml_limits import read_yaml

    f = tmp_path / "n.yaml"
    f.write_text("a: 0x5\nb: 010\nc: '1:30'\nd: 1:30\ne: 42\nf: -7\ng: 1_000\n")
    assert read_yaml(f) == {"a": "0x5", "b": "010", "c": "1:30", "d": "1:30", "e": 42, "f": -7,
                            "g": 1000}  # fmt: skip
    suite = tmp_path / "s.yaml"
    suite.write_text("cases:\n  - layer: msa\n    tokens: 0x5\n")
    code, _, err = cli(["suite", "validate", str(suite)])
    assert code == 2 and "0x5" in err and len(err.strip().splitlines()) == 1
