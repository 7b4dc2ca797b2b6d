"""The backend axis: case keys, refusals, suite expansion, parity, runtime rows, DTM export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torchvision.ops import deform_conv2d

from hilobench import backends
from hilobench.backends import Prepared, max_rel_err, prepare_case
from hilobench.core import options
from hilobench.core.case import Case
from hilobench.core.errors import ConfigError
from hilobench.core.row import is_measured
from hilobench.models.dtm import DeformableTokenMerging
from hilobench.models.dtm_sample import deform_conv2d_sampled
from hilobench.suite.loader import parse_suite

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--dim", "16", "--heads", "2", "--tokens", "8x8", "--batch", "1", "--budget", "0.2",
        "--no-roofline", "--format", "json"]  # fmt: skip
#: Measured rows: a loaded machine may fit fewer samples than an interval needs in a tiny budget.
HAS_ORT = all(__import__("importlib").util.find_spec(p) for p in ("onnxscript", "onnxruntime"))
HAS_OV = HAS_ORT and __import__("importlib").util.find_spec("openvino") is not None


def test_case_key_gains_backend_only_when_not_eager() -> None:
    base = Case("layer", "hilo")
    assert Case("layer", "hilo", backend="eager").key == base.key
    assert "backend" not in base.identity()
    # --compile and --backend compile are the same case, keyed as compiled cases always were
    assert Case("layer", "hilo", backend="compile").key == Case("layer", "hilo", compile=True).key
    ort = Case("layer", "hilo", backend="onnxruntime")
    assert ort.key != base.key and ort.identity()["backend"] == "onnxruntime"
    assert Case.from_json(ort.to_json()) == ort
    assert Case.from_json(Case("layer", "hilo", compile=True).to_json()).backend == "compile"
    with pytest.raises(ConfigError, match="exclude"):
        Case("layer", "hilo", compile=True, backend="openvino")


def test_table_and_modules_agree() -> None:
    for name in ("eager", "compile"):
        assert callable(backends.get_backend(name))
    for name in options.BACKENDS:
        assert (ROOT / "hilobench" / "backends" / f"{name}.py").exists()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--backend", "onnx"], "unknown backend 'onnx'"),
        (["--backend", "onnxruntime", "--train"], "runs inference only"),
        (["--backend", "openvino", "--mode", "both"], "runs inference only"),
        (["--backend", "onnxruntime", "--compile"], "contradicts --backend onnxruntime"),
        (["--backend", "tensorrt"], "runs on cuda only"),
        (["--backend", "onnxruntime", "--dtype", "bfloat16"], "not bfloat16"),
    ],
)
def test_bad_backend_is_one_line(cli: Any, args: list[str], said: str) -> None:
    code, out, err = cli(["layer", "--attn", "msa", *TINY, *args])
    assert code == 2 and said in err and len(err.strip().splitlines()) == 1, err


def test_compile_flag_is_an_alias(capsys: pytest.CaptureFixture[str]) -> None:
    from hilobench.cli.flags import parse_backends

    assert parse_backends("eager", True, ["infer"]) == ["compile"]
    assert "--compile is --backend compile" in capsys.readouterr().err
    assert parse_backends("compile,eager,compile", False, ["train"]) == ["compile", "eager"]


def test_profile_refuses_runtimes(cli: Any) -> None:
    code, _, err = cli(["profile", "--attn", "msa", "--backend", "onnxruntime"])
    assert code == 2 and "eager or compile" in err and len(err.strip().splitlines()) == 1


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = backends.importlib.util.find_spec
    monkeypatch.setattr(
        backends.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "openvino" else real(name, *a),
    )
    with pytest.raises(ConfigError, match=r"pip install 'hilobench\[openvino\]'"):
        backends.check_case(Case("layer", "msa", backend="openvino"))


def test_suite_backend_field_expands() -> None:
    text = "cases:\n  - layer: msa\n    backend: [eager, onnxruntime, compile]\n"
    cases = [sc.case for sc in parse_suite(yaml.safe_load(text)).cases]
    assert [c.backend for c in cases] == ["eager", "onnxruntime", "compile"]
    assert cases[2].compile is True
    with pytest.raises(ConfigError, match="field 'backend'"):
        parse_suite(yaml.safe_load("cases:\n  - layer: msa\n    backend: tvm\n"))


def test_max_rel_err() -> None:
    a = torch.tensor([1.0, -2.0, 4.0])
    assert max_rel_err([a], [a.clone()]) == 0.0
    assert max_rel_err([a], [a + torch.tensor([0.0, 0.0, 0.4])]) == pytest.approx(0.1)
    assert max_rel_err([a], [a[:2]]) == float("inf")
    assert max_rel_err([a], []) == float("inf")


def test_parity_beyond_tolerance_is_a_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.randn(2, 3)

    def off_by_one_percent(module: Any, inputs: Any, case: Case, eager: Any) -> Prepared:
        return Prepared(lambda: x * 1.01, backends.tensors_of, {"backend_timed": "a fake"})

    monkeypatch.setitem(backends._REGISTRY, "onnxruntime", off_by_one_percent)
    row: dict[str, Any] = {"status": "ok"}
    case = Case("layer", "msa", backend="onnxruntime")
    prepare_case(case, torch.nn.Identity(), (x,), lambda: x, row)
    assert row["status"] == "mismatch" and "tolerance" in row["message"]
    assert row["backend_max_rel_err"] == pytest.approx(0.01, rel=1e-3)
    assert row["prepare_s"] >= 0 and row["backend_timed"] == "a fake"
    row = {"status": "ok"}
    monkeypatch.setitem(
        backends._REGISTRY, "onnxruntime", lambda *a: Prepared(lambda: x, backends.tensors_of, {})
    )
    prepare_case(case, torch.nn.Identity(), (x,), lambda: x, row)
    assert is_measured(row) and row["backend_max_rel_err"] == 0.0
    row = {"status": "ok"}
    assert prepare_case(Case("layer", "msa"), torch.nn.Identity(), (x,), lambda: x, row)() is x
    assert row["prepare_s"] == 0.0 and row["backend_max_rel_err"] == 0.0  # eager: the reference


@pytest.mark.parametrize("hw", [(8, 8), (7, 5), (2, 3), (9, 2)])
def test_grid_sample_decomposition_equals_deform_conv2d(hw: tuple[int, int]) -> None:
    gen = torch.Generator().manual_seed(sum(hw))
    h, w = hw
    x = torch.randn(2, 3, h, w, generator=gen)
    weight, bias = torch.randn(5, 3, 2, 2, generator=gen), torch.randn(5, generator=gen)
    # offsets of a few pixels: samples land between pixels and outside the map
    offset = 2.5 * torch.randn(2, 8, h // 2, w // 2, generator=gen)
    want = deform_conv2d(x.double(), offset.double(), weight.double(), bias.double(), stride=2)
    got = deform_conv2d_sampled(x.double(), offset.double(), weight.double(), bias.double(), 2)
    assert (want - got).abs().max() < 1e-10
    got32 = deform_conv2d_sampled(x, offset, weight, None, 2)
    want32 = deform_conv2d(x, offset, weight, None, stride=2)
    assert (want32 - got32).abs().max() <= 1e-5 * max(1.0, float(want32.abs().max()))


def test_dtm_export_path_switch_keeps_the_output() -> None:
    torch.manual_seed(0)
    dtm = DeformableTokenMerging(4, 6).eval()
    assert dtm.offset is not None
    torch.nn.init.normal_(dtm.offset.weight, std=0.5)  # offsets that move the samples
    x = torch.randn(1, 36, 4)
    with torch.no_grad():
        native, _, _ = dtm(x, 6, 6)
        dtm.export_path = "grid_sample"
        sampled, _, _ = dtm(x, 6, 6)
    assert (native - sampled).abs().max() < 1e-5


@pytest.mark.skipif(not HAS_ORT, reason="needs hilobench[onnx]")
def test_onnxruntime_exports_deformable_merging_exactly() -> None:
    from hilobench.backends.onnx_export import exact_paths

    torch.manual_seed(0)
    dtm = DeformableTokenMerging(4, 6).eval()
    torch.nn.init.normal_(dtm.offset.weight, std=0.5)  # type: ignore[union-attr]
    x = torch.randn(1, 36, 4)
    row: dict[str, Any] = {"status": "ok"}
    case = Case("layer", "msa", backend="onnxruntime", threads=1)
    with torch.inference_mode():
        step = prepare_case(case, dtm, (x, 6, 6), lambda: dtm(x, 6, 6), row)
    assert is_measured(row) and row["backend_max_rel_err"] <= 1e-4
    assert row["dtm_path"].startswith("grid_sample") and row["onnx_opset"] >= 18
    assert step()[0].shape == (1, 9, 6)
    with exact_paths(dtm):
        assert dtm.export_path == "grid_sample"
    assert dtm.export_path == "deform_conv2d"  # restored after the export


@pytest.mark.skipif(not HAS_ORT, reason="needs hilobench[onnx]")
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
@pytest.mark.parametrize(
    ("name", "kwargs", "hw"),
    [("dat", {"offset_groups": 3}, (7, 7)),  # its mask is computed from a parameter
     ("swmsa", {"window": 4}, (8, 8))],  # kept mask and shift gathers of fused inference
)  # fmt: skip
def test_fused_layers_export_exactly(
    backend: str, name: str, kwargs: dict[str, Any], hw: tuple[int, int]
) -> None:
    """The fused path exports and matches eager; the export runs with grad mode on, as the
    engine calls it, after an inference call (which may keep tensors between calls)."""
    if backend == "openvino" and not HAS_OV:
        pytest.skip("needs hilobench[openvino]")
    from hilobench.attention import build_attention

    torch.manual_seed(0)
    layer = build_attention(name, dim=24, num_heads=6, impl="fused", **kwargs).eval()
    x = torch.randn(2, hw[0] * hw[1], 24)
    with torch.inference_mode():
        layer(x, *hw)
    row: dict[str, Any] = {"status": "ok"}
    case = Case("layer", name, backend=backend, threads=1)
    assert torch.is_grad_enabled()
    prepare_case(case, layer, (x, *hw), lambda: layer(x, *hw), row)
    # parity: the runtime's output against eager's on this input
    assert is_measured(row) and row["backend_max_rel_err"] <= 1e-5, row.get("message")


@pytest.mark.skipif(not HAS_OV, reason="needs hilobench[onnx] and hilobench[openvino]")
def test_runtime_rows_measured_with_parity(cli: Any, tmp_path: Path) -> None:
    args = ["layer", "--attn", "hilo", *TINY, "--backend", "eager,onnxruntime,openvino"]
    code, out, _ = cli([*args, "--threads", "1", "--out", str(tmp_path)])
    assert code == 0
    rows = json.loads(out)
    assert [r["backend"] for r in rows] == ["eager", "onnxruntime", "openvino"]
    assert len({r["case_key"] for r in rows}) == 3
    assert rows[0]["prepare_s"] == 0.0 and rows[0]["backend_max_rel_err"] == 0.0  # reference
    for r in rows[1:]:
        assert is_measured(r), r["message"]
        assert r["backend_max_rel_err"] <= 1e-4 and r["prepare_s"] > 0
        assert r["n_samples"] >= 1 and r["throughput_median"] > 0
        # the export is outside the timed step: no sample comes near it
        assert max(r["samples_s"]) < r["prepare_s"]
        assert r["mem_source"] == "process_rss_peak" and r["peak_mem_bytes"] > 0
        assert r["backend_timed"]
    assert "f32" in rows[2]["backend_timed"]  # OpenVINO told to compute in float32


@pytest.mark.skipif(not HAS_ORT, reason="needs hilobench[onnx]")
def test_unsupported_op_is_a_row_and_the_next_case_runs(tmp_path: Path) -> None:
    plugin = ROOT / "tests" / "data" / "deform_attention_plugin.py"
    args = ["layer", "--plugin", str(plugin), "--attn", "deform_probe,msa", *TINY,
            "--backend", "onnxruntime", "--out", str(tmp_path / "r")]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "HILOBENCH_PLUGINS"}
    proc = subprocess.run([sys.executable, "-m", "hilobench", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=400)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    probe, msa = json.loads(proc.stdout)
    assert probe["status"] == "unsupported"
    assert probe["message"].startswith("unsupported: torchvision::deform_conv2d")
    assert "under onnxruntime" in probe["message"]
    assert is_measured(msa) and msa["backend_max_rel_err"] <= 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_tensorrt_row_on_cuda(cli: Any, tmp_path: Path) -> None:
    pytest.importorskip("torch_tensorrt")
    args = ["layer", "--attn", "msa", *TINY, "--device", "cuda", "--backend", "tensorrt"]
    code, out, _ = cli([*args, "--out", str(tmp_path)])
    (row,) = json.loads(out)
    assert code == 0 and is_measured(row) and row["backend_max_rel_err"] <= 1e-4
    assert row["mem_source"] == "cuda_used"


def test_runtimes_suite_covers_every_layer_under_each_backend() -> None:
    from hilobench.attention import available_attentions
    from hilobench.suite.loader import load_suite

    suite = load_suite(ROOT / "hilobench" / "data" / "suites" / "runtimes.yaml")
    layers = {sc.case.name for sc in suite.cases if sc.case.kind == "layer"}
    assert layers == set(available_attentions())
    by_backend: dict[str, int] = {}
    for sc in suite.cases:
        by_backend[sc.case.backend] = by_backend.get(sc.case.backend, 0) + 1
    assert set(by_backend) == {"eager", "compile", "onnxruntime", "openvino"}
    assert len(set(by_backend.values())) == 1  # every case under every backend
    assert {sc.case.batch for sc in suite.cases} == {1, 64}


def _row(name: str, backend: str, img_s: float, n: int = 8) -> dict[str, Any]:
    per_call = 1.0 / img_s  # batch 1; the samples' median is per_call: views derive img_s
    samples = [per_call * (1 + 0.01 * (i % 3 - 1)) for i in range(n)]
    return {"kind": "layer", "name": name, "backend": backend, "status": "ok", "res": "224",
            "tokens": "14x14", "batch": 1, "device": "cpu", "dtype": "float32",
            "impl": "reference", "mode": "infer", "options": {}, "throughput_median": img_s,
            "samples_s": samples}  # fmt: skip


def test_report_runtime_table_and_claims() -> None:
    from hilobench.report.runtimes import claims_table, runtime_section, runtime_table

    rows = [_row("hilo", "eager", 30.0), _row("sra", "eager", 10.0), _row("wmsa", "eager", 25.0),
            {**_row("hilo", "onnxruntime", 60.0), "status": "few-samples"},  # measured too
            _row("sra", "onnxruntime", 50.0),
            {**_row("wmsa", "onnxruntime", 1.0), "status": "unsupported"}]  # fmt: skip
    table = "\n".join(runtime_table(rows))
    assert "| hilo | 224 | 14x14 | 1 | 30 | 60 | ~2.00 |" in table
    assert "| wmsa | 224 | 14x14 | 1 | 25 | unsupported |  |" in table
    claims = "\n".join(claims_table(rows))
    assert "| eager | 224 | 14x14 | 1 | float32 | hilo / sra ≥ 1.4 | 3.00 |" in claims
    assert claims.count("holds") == 1  # eager: 3.0x SRA; W-MSA 1.2x < 1.6 fails
    assert "| onnxruntime | 224 | 14x14 | 1 | float32 | hilo / sra ≥ 1.4 | 1.20 |" in claims
    assert claims.count("fails") == 2 and "hilo / wmsa" in claims
    assert runtime_section([_row("hilo", "eager", 3.0)]) == []


def test_claims_pair_rows_of_one_backend_only() -> None:
    from hilobench.gate.row_ids import row_context
    from hilobench.run.engine import base_row

    rows = [
        base_row(Case("layer", n, backend=b)) for n in ("hilo", "sra") for b in options.BACKENDS
    ]
    contexts = [row_context(r) for r in rows]
    n = len(options.BACKENDS)
    assert contexts[:n] == contexts[n:]  # hilo and sra pair up backend by backend
    assert len(set(contexts[:n])) == n  # never across backends


def test_figures_tell_backends_apart() -> None:
    from hilobench.report.series import series_vs_res

    rows = [_row("hilo", "eager", 30.0), _row("hilo", "openvino", 60.0)]
    assert set(series_vs_res(rows)) == {"hilo eager", "hilo openvino"}


def test_table_shows_backend_only_where_a_runtime_ran() -> None:
    from hilobench.cli.rowtable import rich_table

    def headers(rows: list[dict[str, Any]]) -> list[str]:
        return [str(c.header) for c in rich_table(rows).columns]

    mixed = [_row("hilo", "eager", 3.0), _row("hilo", "openvino", 6.0)]
    assert "backend" in headers(mixed)
    assert "backend" not in headers([_row("hilo", "eager", 3.0), _row("sra", "eager", 2.0)])
    only = rich_table([_row("hilo", "openvino", 6.0), _row("sra", "openvino", 5.0)], "layers")
    assert "openvino" in str(only.title)  # one backend for all: named in the title


@pytest.mark.skipif(not HAS_ORT, reason="needs hilobench[onnx]")
def test_onnxruntime_pool_threads_do_not_spin_between_runs(tmp_path: Path) -> None:
    """Spinning pool threads take the cores from whatever is timed next (eager, in a group
    interleaved across backends, ran 1.8-2.1x slower right after an ONNX Runtime call)."""
    import onnx
    from onnx import TensorProto, helper

    from hilobench.backends.onnxruntime import _session
    from hilobench.core.case import Case

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    sess = _session(path, Case("layer", "msa", (56, 56), 1))
    entry = sess.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")
    assert entry == "0"
