"""``--max-batch``: the search finds the largest batch within a memory limit against a fake
allocator (peak = a·batch + b), treats an out-of-memory probe as not fitting, stops within
its probe and batch bounds; memory limits parse with their units or exit 2."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from hilobench.core.case import Case
from hilobench.core.errors import ConfigError
from hilobench.run.maxbatch import (
    Probe,
    parse_mem_limit,
    search_key,
    search_max_batch,
    search_row,
)

CliRunner = Callable[[list[str]], tuple[int, str, str]]
MiB = 2**20


def linear(a: int, b: int, oom_above: int | None = None) -> Callable[[int], Probe]:
    """A fake allocator: a probe at ``batch`` peaks at ``a * batch + b`` bytes, and raises
    out of memory (no peak measured) above ``oom_above``."""

    def probe(batch: int) -> Probe:
        if oom_above is not None and batch > oom_above:
            return Probe(batch, None, "OOM", "CUDA out of memory")
        return Probe(batch, a * batch + b, "ok")

    return probe


@pytest.mark.parametrize(
    "a, b, limit", [(3 * MiB, 10 * MiB, 200 * MiB), (1000, 0, 10**6), (7, 3, 2**18 + 5)]
)
def test_found_batch_fits_and_its_double_does_not(a: int, b: int, limit: int) -> None:
    calls: list[int] = []
    fake = linear(a, b)

    def probe(batch: int) -> Probe:
        calls.append(batch)
        return fake(batch)

    s = search_max_batch(probe, limit)
    assert s.stop == "found"
    assert s.best == (limit - b) // a  # the exact answer of peak <= limit
    assert a * s.best + b <= limit < a * (s.best + 1) + b
    assert a * 2 * s.best + b > limit  # twice the answer does not fit either
    assert s.first_fail == s.best + 1
    assert len(calls) == len(set(calls)) == len(s.probes)  # no batch probed twice
    assert calls[:3] == [1, 2, 4]  # doubling first


def test_oom_probe_counts_as_not_fitting() -> None:
    # memory would allow 1000, but the allocator gives out above 300
    s = search_max_batch(linear(1000, 0, oom_above=300), 10**6)
    assert s.best == 300 and s.first_fail == 301
    assert any(p.status == "OOM" for p in s.probes)


def test_search_is_bounded_by_probes_and_ceiling() -> None:
    s = search_max_batch(linear(1, 0), 10**12, ceiling=64)
    assert (s.best, s.stop, s.first_fail) == (64, "ceiling", None)
    assert [p.batch for p in s.probes] == [1, 2, 4, 8, 16, 32, 64]
    s = search_max_batch(linear(1000, 0), 10**6, max_probes=5)
    assert len(s.probes) == 5 and s.stop == "probes"
    assert s.best == 16 and all(p.fits(10**6) == (p.batch <= 1000) for p in s.probes)
    # the default bounds: a limit nothing reaches ends at the ceiling within the probe cap
    s = search_max_batch(linear(1, 0), 10**15)
    assert s.stop == "ceiling" and len(s.probes) <= 33


def test_rows_of_a_search() -> None:
    case = Case("layer", "msa", batch=1)
    s = search_max_batch(linear(1000, 0), 10**6)
    row = search_row(case, s, {"batch": s.best, "name": "msa"})
    assert row["max_batch"] == 1000 and row["mem_limit_bytes"] == 10**6
    assert row["status"] == "ok" and row["peak_mem_bytes"] == 10**6
    assert row["case_key"] == search_key(case.with_(batch=64), 10**6) != case.key
    assert [p["batch"] for p in row["max_batch_probes"]][:2] == [1, 2]
    none = search_row(case, search_max_batch(linear(1000, 5000), 10), {"batch": 1})
    assert none["status"] == "OOM" and none["max_batch"] == 0
    assert "batch 1 needs" in none["message"]


@pytest.mark.parametrize(
    "text, value",
    [
        ("2GB", 2 * 10**9),
        ("512MiB", 512 * MiB),
        ("1.5GiB", 3 * 2**29),
        ("100 kb", 10**5),
        ("4096", 4096),
        ("1tib", 2**40),
    ],
)
def test_mem_limit_units(text: str, value: int) -> None:
    assert parse_mem_limit(text) == value


@pytest.mark.parametrize("text", ["", "0", "-1GB", "2XB", "GB", "nan", "1e9", "2 G B", "0.1"])
def test_bad_mem_limit(text: str) -> None:
    with pytest.raises(ConfigError, match="memory limit"):
        parse_mem_limit(text)


TINY = ["layer", "--attn", "msa", "--dim", "32", "--heads", "2", "--tokens", "4x4"]


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--max-batch", "--mem-limit", "2XB"], "2XB"),
        (["--max-batch", "--mem-limit", "0"], "memory limit"),
        (["--max-batch", "--batch", "8"], "--batch"),
        (["--mem-limit", "2GB"], "--max-batch"),
        (["--max-batch", "--mem-limit", "100000TB"], "available"),
    ],
)
def test_bad_search_flags_exit_2(
    extra: list[str], needle: str, tmp_path: Path, cli: CliRunner
) -> None:
    code, out, err = cli([*TINY, *extra, "--out", str(tmp_path / "r")])
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "r").exists()


def fake_worker_probes(monkeypatch: pytest.MonkeyPatch) -> list[Case]:
    """Worker probes replaced by the fake allocator (1 MiB per image over 1 MiB); returns the
    list the cases probed are appended to."""
    import hilobench.run.maxbatch as mb

    seen: list[Case] = []

    def fake_probe(case: Case, env_id: str = "", timeout: float = 0) -> Callable[[int], Probe]:
        seen.append(case)
        return linear(MiB, MiB)

    monkeypatch.setattr(mb, "worker_probe", fake_probe)
    return seen


def test_cli_search_writes_one_row(
    tmp_path: Path, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command's path with the fake allocator standing in for the worker probes."""
    seen = fake_worker_probes(monkeypatch)
    out = tmp_path / "r"
    code, stdout, err = cli([*TINY, "--max-batch", "--mem-limit", "64MiB", "--out", str(out)])
    assert code == 0, err
    (row,) = [json.loads(x) for x in (out / "rows.jsonl").read_text().splitlines()]
    assert row["max_batch"] == 63 and row["batch"] == 63 and row["status"] == "ok"
    assert row["mem_limit_bytes"] == 64 * MiB and row["max_batch_fail"] == 64
    assert seen[0].batch == 1 and row["kind"] == "layer" and row["name"] == "msa"
    assert "max batch" in stdout and "63" in stdout


def test_worker_probe_measures_in_a_fresh_process() -> None:
    """One real probe: a worker process builds the case at the batch and reports its peak."""
    from hilobench.run.maxbatch import worker_probe

    case = Case("layer", "msa", options=(("dim", 32), ("heads", 2), ("tokens", "4x4")))
    p = worker_probe(case, timeout=120)(3)
    assert p.status == "ok" and p.batch == 3, p.message
    assert p.peak_bytes is not None and p.peak_bytes > 3 * 16 * 32 * 4  # at least the input
    assert p.row is not None and p.row["batch"] == 3 and p.row["peak_mem_bytes"] == p.peak_bytes


# --- max_batch in a suite: one search per expanded case, as on the command line ----------

SUITE = """
name: searched
cases:
  - layer: msa
    dim: 32
    heads: 2
    tokens: 4x4
    impl: [reference, fused]
    max_batch: {mem_limit: 64MiB}
  - layer: msa
    id: timed
    dim: 32
    heads: 2
    tokens: 4x4
    budget: 0.05
"""


def test_suite_max_batch_field_expands_to_one_search_per_case() -> None:
    from yaml import safe_load as parse_yaml_text

    from hilobench.core.plan import plan
    from hilobench.suite.loader import parse_suite

    suite = parse_suite(parse_yaml_text(SUITE))
    searched = [sc for sc in suite.cases if sc.max_batch is not None]
    assert [sc.case.impl for sc in searched] == ["reference", "fused"]
    assert all(sc.max_batch == 64 * MiB and sc.case.batch == 1 for sc in searched)
    assert searched[0].row_key == search_key(searched[0].case, 64 * MiB) != searched[0].case.key
    timed = suite.cases[-1]
    assert timed.max_batch is None and timed.row_key == timed.case.key
    assert len(plan(suite.cases)) == 3


@pytest.mark.parametrize(
    "field, needle",
    [
        ("max_batch: {mem_limit: 0}", "bad memory limit '0'"),
        ("max_batch: {limit: 8GiB}", "a mapping {mem_limit: SIZE}"),
        ("max_batch: true", "a mapping {mem_limit: SIZE}"),
        ("max_batch: {mem_limit: 8GiB}\n    batch: 8", "searches the batch; give it or batch"),
    ],
)
def test_suite_max_batch_field_refused_in_one_line(field: str, needle: str) -> None:
    from yaml import safe_load as parse_yaml_text

    from hilobench.suite.loader import parse_suite

    text = f"cases:\n  - layer: msa\n    {field}\n"
    with pytest.raises(ConfigError) as e:
        parse_suite(parse_yaml_text(text))
    assert needle in str(e.value) and "max_batch" in str(e.value), str(e.value)


def test_suite_run_writes_one_search_row_per_case_and_resumes(
    tmp_path: Path, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = fake_worker_probes(monkeypatch)
    path = tmp_path / "s.yaml"
    path.write_text(SUITE[: SUITE.rindex("  - layer: msa")])  # the searched entry only
    out = tmp_path / "r"
    code, _, err = cli(["suite", "run", str(path), "--out", str(out), "--no-roofline"])
    assert code == 0, err
    rows = [json.loads(x) for x in (out / "rows.jsonl").read_text().splitlines()]
    assert [r["impl"] for r in rows] == ["reference", "fused"] and len(seen) == 2
    assert all(r["max_batch"] == 63 and r["mem_limit_bytes"] == 64 * MiB for r in rows)
    assert all(r["suite"] == "searched" and r["status"] == "ok" for r in rows)
    code, _, err = cli(["suite", "run", str(path), "--out", str(out), "--resume"])
    assert code == 0, err
    assert len(seen) == 2  # both searches were done already
