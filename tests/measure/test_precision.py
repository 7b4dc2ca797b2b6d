"""The precision policy: what each dtype sets in torch's backend flags, that every step sets
it, what rows and titles say, and how rows from before the policy are labelled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from hilobench.core.case import Case
from hilobench.core.errors import ConfigError
from hilobench.measure import precision
from hilobench.measure.dtypes import TORCH_DTYPES, apply_precision, check_precision, current_flags
from hilobench.run import engine as bench
from hilobench.store.reader import load_rows

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _restore_flags() -> Iterator[None]:
    saved = (
        torch.get_float32_matmul_precision(),
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
    )
    yield
    torch.set_float32_matmul_precision(saved[0])
    torch.backends.cuda.matmul.allow_tf32 = saved[1]
    torch.backends.cudnn.allow_tf32 = saved[2]
    torch.backends.cudnn.benchmark = saved[3]


@pytest.mark.parametrize(
    ("dtype", "device", "name", "mm", "conv", "bench_on"),
    [
        ("float32", "cuda", "fp32", False, False, True),
        ("tf32", "cuda:0", "tf32", True, True, True),
        ("float16", "cuda", "amp-fp16", False, False, True),
        ("bfloat16", "cuda", "amp-bf16", False, False, True),
        ("float32", "cpu", "fp32", False, False, False),
        ("bfloat16", "cpu", "amp-bf16", False, False, False),
    ],
)
def test_apply_sets_the_flags_of_the_policy(
    dtype: str, device: str, name: str, mm: bool, conv: bool, bench_on: bool
) -> None:
    # start from the opposite of what the policy wants: the flags must be set, not assumed
    torch.set_float32_matmul_precision("highest" if mm else "high")
    torch.backends.cudnn.allow_tf32 = not conv
    cols = apply_precision(dtype, device)
    assert cols == {
        "precision_policy": name,
        "tf32_matmul": mm,
        "tf32_cudnn": conv,
        "cudnn_benchmark": bench_on,
    }
    assert torch.backends.cuda.matmul.allow_tf32 is mm
    assert (torch.get_float32_matmul_precision() == "highest") is (not mm)
    assert torch.backends.cudnn.allow_tf32 is conv
    if device.startswith("cuda"):
        assert torch.backends.cudnn.benchmark is True
    assert current_flags().tf32_matmul is mm


def test_tf32_is_refused_on_cpu_in_one_line(cli) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="'tf32' is a CUDA"):
        check_precision("tf32", "cpu")
    check_precision("tf32", "cuda")  # accepted where it means something
    code, out, err = cli(["layer", "--attn", "hilo", "--dtype", "tf32", "--device", "cpu"])
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "tf32" in err and "Traceback" not in err
    assert TORCH_DTYPES["tf32"] is torch.float32


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_every_step_applies_its_dtype(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A step sets the policy each call, so interleaved members of other dtypes (or anything
    that ran before) cannot leave their flags behind."""
    case = Case(kind="layer", name="msa", batch=1, mode=mode, options=(("tokens", "4x4"),))
    subject = bench.build_subject(case)
    step = bench.make_step(case, subject, subject.make_inputs("cpu", 1))
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(bench, "apply_precision", lambda d, dev: calls.append((d, dev)) or {})
    step()
    step()
    assert calls == [("float32", "cpu")] * 2


def test_step_resets_flags_left_by_others() -> None:
    case = Case(kind="layer", name="msa", batch=1, options=(("tokens", "4x4"),))
    subject = bench.build_subject(case)
    step = bench.make_step(case, subject, subject.make_inputs("cpu", 1))
    torch.set_float32_matmul_precision("high")
    step()
    assert torch.get_float32_matmul_precision() == "highest"


def test_row_and_title_state_the_policy() -> None:
    from hilobench.cli.rowtable import rich_table
    from hilobench.core.terminal import render_to_text

    case = Case(kind="layer", name="msa", batch=1, budget=0.3, options=(("tokens", "4x4"),))
    row = bench.run_case(case, count=False)
    assert row["precision_policy"] == "fp32"
    assert row["tf32_matmul"] is False and row["tf32_cudnn"] is False
    text = render_to_text(rich_table([dict(row)], "attention layers"), 200)
    assert "precision fp32" in text.splitlines()[0] + text.splitlines()[1]
    mixed = [dict(row), {**row, "name": "x", "precision_policy": "fp32+tf32conv"}]
    text = render_to_text(rich_table(mixed, "t"), 200)
    assert "fp32+tf32conv" in text and "precision" in text  # a column when rows differ


def test_peak_is_measured_under_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    from hilobench.measure import roofline

    seen: list[tuple[str, str]] = []
    monkeypatch.setattr(roofline, "apply_precision", lambda d, dev: seen.append((d, dev)) or {})
    roofline.measure_peak("cpu", "float32", budget_s=0.05)
    assert seen == [("float32", "cpu")]


@pytest.mark.parametrize(
    ("mm", "conv", "dtype", "device", "want"),
    [
        (False, True, "float32", "cuda", "fp32+tf32conv"),  # PyTorch's defaults
        (True, False, "float32", "cuda", "fp32+tf32mm"),
        (True, True, "float32", "cuda", "tf32"),
        (False, True, "float32", "cpu", "fp32"),  # TF32 flags do nothing on the CPU
        (False, True, "float16", "cuda", "amp-fp16"),
    ],
)
def test_legacy_rows_get_what_they_ran(
    mm: bool, conv: bool, dtype: str, device: str, want: str
) -> None:
    rows = [{"dtype": dtype, "device": device}, {"dtype": dtype, "precision_policy": "tf32"}]
    precision.label_legacy(rows, {"tf32_matmul": mm, "tf32_cudnn": conv, "device": device})
    assert rows[0]["precision_policy"] == want
    assert rows[0]["tf32_cudnn"] is conv and rows[0]["tf32_matmul"] is mm
    assert rows[1]["precision_policy"] == "tf32"  # a row that says it is kept
    bare = [{"dtype": dtype}]
    precision.label_legacy(bare, {})  # a run that recorded no flags: nothing invented
    assert "precision_policy" not in bare[0]


@pytest.mark.parametrize(
    ("run", "want"),
    [("attention_layers_float32", "fp32+tf32conv"), ("paper_imagenet_float16", "amp-fp16")],
)
def test_stored_gpu_runs_load_labelled(run: str, want: str) -> None:
    """The first H200 runs had PyTorch's defaults: TF32 convolutions, FP32 matmuls."""
    rows = load_rows(ROOT / "results" / "gpu_h200" / run)
    assert rows and {r["precision_policy"] for r in rows} == {want}
