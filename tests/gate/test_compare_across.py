"""Compare groups ``across`` a case field: one case interleaved with itself under every backend
(or impl, dtype), its ratio to the reference value a per-round ratio with an interval."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from hilobench.cluster.packing import unit_from_json, unit_to_json
from hilobench.core.errors import ConfigError
from hilobench.core.plan import plan
from hilobench.report.runtimes import runtime_table
from hilobench.report.tables import group_cells
from hilobench.store.writer import load_rows
from hilobench.suite.loader import load_suite, parse_suite

TINY = {"device": "cpu", "batch": 1, "dim": 32, "heads": 2, "tokens": "7x7", "budget": 0.1}
#: A loaded machine may fit fewer samples than an interval needs in a tiny budget.
TIMED = ("ok", "few-samples")
HAS_ORT = all(importlib.util.find_spec(p) for p in ("onnxscript", "onnxruntime"))


def _suite(compare: dict[str, Any], **defaults: Any) -> Any:
    cases = [{"layer": ["hilo", "msa"]}]
    return parse_suite({"defaults": {**TINY, **defaults}, "cases": cases, "compare": compare})


def test_across_backend_units_hold_one_case_under_every_backend() -> None:
    s = _suite(
        {"name": "rt", "members": "all", "across": "backend", "reference": "eager"},
        backend=["onnxruntime", "eager", "compile"],
    )
    g = s.compare[0]
    assert g.across == "backend" and g.reference == "eager"
    units = plan(s.cases, s.compare)
    assert [[sc.id for sc in u.items] for u in units] == [["hilo"] * 3, ["msa"] * 3]
    for u in units:
        assert [sc.case.backend for sc in u.items] == ["onnxruntime", "eager", "compile"]
        assert u.ref == 1  # the eager case, wherever it stands
    back = [unit_from_json(unit_to_json(u)) for u in units]  # the cluster executor's form
    assert [b.group and b.group.across for b in back] == ["backend", "backend"]
    assert [b.ref for b in back] == [1, 1]


def test_runtimes_suite_interleaves_each_case_across_its_backends() -> None:
    s = load_suite(Path(__file__).resolve().parents[2] / "suites" / "runtimes.yaml")
    units = plan(s.cases, s.compare)
    assert len(units) * 4 == len(s.cases)  # every case once, with its three other backends
    for u in units:
        assert len({sc.id for sc in u.items}) == 1 and u.ref is not None
        assert sorted(sc.case.backend for sc in u.items) == sorted(
            ["eager", "compile", "onnxruntime", "openvino"]
        )
        assert u.items[u.ref].case.backend == "eager"


def test_without_across_a_group_stays_within_one_backend() -> None:
    s = _suite({"members": "all", "reference": "msa"}, backend=["eager", "onnxruntime"])
    units = plan(s.cases, s.compare)
    assert [{sc.case.backend for sc in u.items} for u in units] == [{"eager"}, {"onnxruntime"}]
    assert all(u.items[u.ref or 0].id == "msa" for u in units)


@pytest.mark.parametrize(
    ("compare", "said"),
    [
        ({"members": "all", "across": "batch"}, "'batch' is not a field to interleave across"),
        ({"members": "all", "across": "backend", "reference": "tensorrt"},
         "'tensorrt' is not a backend of the members; they run: eager, onnxruntime"),
    ],
)  # fmt: skip
def test_bad_across_is_one_line(compare: dict[str, Any], said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        _suite(compare, backend=["eager", "onnxruntime"])


def test_across_needs_the_reference_at_every_setting() -> None:
    data = {"defaults": TINY, "cases": [{"layer": "hilo", "backend": ["eager", "onnxruntime"]},
                                        {"layer": "msa", "backend": "onnxruntime"}],
            "compare": {"members": "all", "across": "backend", "reference": "eager"}}  # fmt: skip
    with pytest.raises(ConfigError, match="exactly one 'eager' case at every setting"):
        parse_suite(data)


def _run(tmp: Path, cli: Any, body: str) -> list[dict[str, Any]]:
    p = tmp / "s.yaml"
    p.write_text(
        "name: s\ndefaults: {device: cpu, batch: 1, dim: 32, heads: 2, tokens: 7x7, "
        f"budget: 0.3, threads: 1}}\n{body}"
    )
    out = tmp / "run"
    code, _, err = cli(["suite", "run", str(p), "--no-isolate", "--no-roofline", "--out", str(out)])
    assert code == 0, err
    return load_rows(out)


def test_a_case_interleaved_across_impls(tmp_path: Path, cli: Any) -> None:
    body = (
        "cases:\n  - {layer: wmsa, impl: [fused, reference], window: 7}\n"
        "compare: {name: paths, members: all, across: impl, reference: reference}\n"
    )
    rows = _run(tmp_path, cli, body)
    fused, ref = rows
    assert (fused["impl"], ref["impl"]) == ("fused", "reference")
    assert fused["status"] in TIMED and ref["status"] in TIMED
    assert fused["ref_key"] == ref["case_key"] and ref["ratio_to_ref"] == 1.0
    assert fused["ref"] == "wmsa reference"
    assert fused["ratio_n"] >= 3 and fused["interleaved"] and ref["interleaved"]
    assert fused["ratio_ci_low"] <= fused["ratio_to_ref"] <= fused["ratio_ci_high"]
    assert len(fused["samples_s"]) == len(ref["samples_s"])  # one sample each per round
    made = group_cells(rows)
    assert made is not None
    marked = [cells for cells in made[2] if "(ref)" in " ".join(cells)]
    assert len(marked) == 1  # the reference value's case only, though both are 'wmsa'


@pytest.mark.skipif(not HAS_ORT, reason="needs hilobench[onnx]")
def test_a_case_interleaved_across_backends(tmp_path: Path, cli: Any) -> None:
    body = (
        "cases:\n  - {layer: hilo, impl: reference, backend: [eager, onnxruntime]}\n"
        "compare: {name: rt, members: all, across: backend, reference: eager}\n"
    )
    rows = _run(tmp_path, cli, body)
    eager, ort = rows
    assert ort["status"] in TIMED, ort.get("message")
    assert ort["prepare_s"] > 0 and ort["backend_max_rel_err"] <= 1e-4
    assert max(ort["samples_s"]) < ort["prepare_s"]  # the export stays out of the timed step
    assert ort["ref_key"] == eager["case_key"] and ort["ratio_n"] >= 3
    assert ort["ref"] == "hilo eager"
    # a loaded machine may leave the tiny budget few samples; the table shows ok rows' ratios
    table = "\n".join(runtime_table([{**r, "status": "ok"} for r in rows]))
    ratio, lo, hi = ort["ratio_to_ref"], ort["ratio_ci_low"], ort["ratio_ci_high"]
    assert f"| {ratio:.2f} ({lo:.2f}–{hi:.2f}) |" in table  # the interleaved ratio, not ~


def test_runtime_table_marks_ratios_of_rows_timed_apart() -> None:
    base = {"kind": "layer", "name": "hilo", "status": "ok", "res": "224", "tokens": "14x14",
            "batch": 1, "device": "cpu", "dtype": "float32", "impl": "fused"}  # fmt: skip
    eager = {**base, "backend": "eager", "throughput_median": 10.0, "case_key": "e"}
    ov = {**base, "backend": "openvino", "throughput_median": 25.0, "case_key": "o"}
    assert "| 25 | ~2.50 |" in "\n".join(runtime_table([eager, ov]))
    paired = {**ov, "ref_key": "e", "ratio_to_ref": 2.4, "ratio_ci_low": 2.2, "ratio_ci_high": 2.6}
    assert "| 25 | 2.40 (2.20–2.60) |" in "\n".join(runtime_table([eager, paired]))
