"""`hilobench export`: a run's medians in the formats benchmark-history tools read, checked
against fixtures written in the shape of each tool's documented example (tests/data/export)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hilobench.core.case import Case
from hilobench.store.writer import RunDir

CliRunner = Callable[[list[str]], tuple[int, str, str]]
FIXTURES = Path(__file__).resolve().parents[1] / "data" / "export"


def _row(name: str, tp: float | None, status: str = "ok", res: int = 224) -> dict[str, Any]:
    case = Case("layer", name, (res, res), 64, "cpu", "float32")
    row: dict[str, Any] = {"case_key": case.key, "case": case.to_json(), "name": name,
                           "status": status, "n_samples": 25}  # fmt: skip
    if tp is not None:
        row.update(throughput_median=tp, throughput_ci_low=0.9 * tp, throughput_ci_high=1.2 * tp,
                   latency_ms_p50=64e3 / tp, latency_ms_iqr=1.5)  # fmt: skip
    return row


@pytest.fixture
def run(tmp_path: Path) -> Path:
    d = RunDir(tmp_path / "run").create(
        {"env_id": "e", "cpu_model": "Xeon Gold 6342", "threads": 2}
    )
    for r in (_row("hilo", 900.0), _row("msa", 400.0), _row("msa", 300.0, res=256),
              _row("sra", None, status="OOM")):  # fmt: skip
        d.append(r)
    return d.path


def _json_type(v: Any) -> str:
    return "number" if isinstance(v, int | float) and not isinstance(v, bool) else type(v).__name__


def _shape_of_entries(entries: list[dict[str, Any]]) -> tuple[dict[str, str], set[str]]:
    """(key -> JSON type, required keys) of a list of objects, as the fixture shows them."""
    types = {k: _json_type(v) for e in entries for k, v in e.items()}
    required = set.intersection(*(set(e) for e in entries))
    return types, required


def check_github_action_benchmark(doc: Any) -> None:
    fixture = json.loads((FIXTURES / "github_action_benchmark_custom.json").read_text())
    types, required = _shape_of_entries(fixture)
    assert required == {"name", "unit", "value"}  # the fixture says what the docs say
    assert isinstance(doc, list) and doc
    for entry in doc:
        assert isinstance(entry, dict) and required <= set(entry) <= set(types), entry
        for k, v in entry.items():
            assert _json_type(v) == types[k], (k, v)
    assert len({e["name"] for e in doc}) == len(doc)


def check_bencher(doc: Any) -> None:
    fixture = json.loads((FIXTURES / "bencher_metric_format.json").read_text())
    metrics = [m for bench in fixture.values() for m in bench.values()]
    types, required = _shape_of_entries(metrics)
    assert required == {"value"} and set(types) == {"value", "lower_value", "upper_value"}
    assert isinstance(doc, dict) and doc
    for name, bench in doc.items():
        assert isinstance(name, str) and name and isinstance(bench, dict) and bench
        for slug, metric in bench.items():
            assert isinstance(slug, str) and slug and isinstance(metric, dict)
            assert required <= set(metric) <= set(types), metric
            assert all(_json_type(v) == "number" for v in metric.values())
            if "lower_value" in metric:
                assert metric["lower_value"] <= metric["value"] <= metric["upper_value"]


def test_github_action_benchmark_output_has_the_documented_shape(run: Path, cli: CliRunner) -> None:
    code, out, err = cli(["export", str(run), "--format", "github-action-benchmark"])
    assert code == 0, err
    doc = json.loads(out)
    check_github_action_benchmark(doc)
    assert len(doc) == 3 and "1 row(s) without a measured median" in err  # the OOM row is out
    hilo = next(e for e in doc if e["name"].startswith("hilo/"))
    assert hilo["value"] == 900.0 and hilo["unit"] == "img/s" and hilo["range"] == "± 180"
    assert "95% CI 810 to 1080" in hilo["extra"] and "Xeon Gold 6342 (2 threads)" in hilo["extra"]
    code, out, _ = cli(["export", str(run), "--format", "github-action-benchmark",
                        "--metric", "latency"])  # fmt: skip
    lat = json.loads(out)
    check_github_action_benchmark(lat)
    assert {e["unit"] for e in lat} == {"ms"}


def test_bencher_output_has_the_documented_shape(run: Path, cli: CliRunner, tmp_path: Path) -> None:
    out_file = tmp_path / "bmf.json"
    code, _, err = cli(["export", str(run), "--format", "bencher", "--out", str(out_file)])
    assert code == 0, err
    doc = json.loads(out_file.read_text())
    check_bencher(doc)
    hilo = next(v for k, v in doc.items() if k.startswith("hilo/"))
    assert hilo["throughput"] == {"value": 900.0, "lower_value": 810.0, "upper_value": 1080.0}
    assert hilo["latency"]["value"] == pytest.approx(64e3 / 900 * 1e6)  # nanoseconds


def test_the_checks_reject_what_the_tools_would(tmp_path: Path, cli: CliRunner) -> None:
    with pytest.raises(AssertionError):
        check_github_action_benchmark([{"name": "x", "value": "12", "unit": "ms"}])
    with pytest.raises(AssertionError):
        check_bencher({"x": {"latency": {"lower_value": 1.0}}})
    d = RunDir(tmp_path / "bad").create({"env_id": "e"})
    d.append(_row("sra", None, status="OOM"))
    code, _, err = cli(["export", str(d.path), "--format", "bencher"])
    assert code == 2 and "no measured case" in err
    code, _, err = cli(["export", str(d.path), "--format", "csv"])
    assert code == 2 and "github-action-benchmark, bencher" in err
