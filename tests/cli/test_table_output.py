"""The terminal table as a new reader meets it: the default columns fit 100 terminal columns
with every number whole, ``COLUMNS`` is honoured when output is piped, ``--columns`` and
``--wide`` choose columns (a bad name exits 2 listing them), memory is labelled MiB, the
paper columns have names for people, and ``--version`` is in ``--help``."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from hilobench.cli.rowtable import COLUMNS, print_table
from hilobench.core import numfmt as nf
from hilobench.core.terminal import console
from hilobench.store.writer import RunDir

CliRunner = Callable[[list[str]], tuple[int, str, str]]
NAMES = ["cswin", "dat", "focal", "gsa", "hilo", "hornet", "linformer", "lsa", "msa",
         "performer", "quadtree", "sra", "swmsa", "tmsa", "van", "wmsa", "xca"]  # fmt: skip


def layer_rows(n: int = len(NAMES)) -> list[dict[str, Any]]:
    """Rows shaped like ``layer --attn all --res 224``, with numbers as wide as real ones get
    (thousands of img/s, wide intervals) and one failure with a long message."""
    rows = []
    for i, name in enumerate(NAMES[:n]):
        tp = 1612.34 + 1037.7 * i
        rows.append(
            {
                "kind": "layer",
                "name": name,
                "attention": name,
                "impl": "reference",
                "mode": "infer",
                "res": "224",
                "tokens": "14x14",
                "batch": 64,
                "dtype": "float32",
                "device": "cpu",
                "params": 2_359_296 + 1000 * i,
                "macs": 521_434_368 + 10**6 * i,
                "macs_traced": 521_434_368 + 10**6 * i,
                "throughput_median": tp,
                "throughput_ci_low": tp * 0.91,
                "throughput_ci_high": tp * 1.07,
                "latency_ms_p50": 64_000 / tp,
                "latency_ms_p90": 70_000 / tp,
                "cov": 0.0417,
                "n_samples": 22,
                "roofline": 0.1234,
                "peak_mem_bytes": 123_456_789 + 10**6 * i,
                "status": "ok",
                "noisy": i == 3,
                "case_key": f"k{i}",
                "env_id": "e",
            }  # fmt: skip
        )
    if n > 7:  # too few samples for an interval: its min–max range, marked
        rows[7].update(status="few-samples", n_samples=3, message="3 samples in --budget 1 s")
    if n > 5:
        rows[5].update(status="OOM", message="CUDA out of memory. Tried to allocate 2.00 GiB")
        for k in ("throughput_median", "throughput_ci_low", "throughput_ci_high"):
            rows[5].pop(k)
        rows[5].pop("latency_ms_p50")
    return rows


def numbers(rows: list[dict[str, Any]]) -> list[str]:
    """The numbers the default table shows, formatted as it formats them."""
    out = []
    for r in rows:
        out.append(nf.count(r["macs"], 1e6))
        out.append(nf.count(r["peak_mem_bytes"], nf.MIB))
        if "throughput_median" in r:
            lo, hi = r["throughput_ci_low"], r["throughput_ci_high"]
            out.append(nf.measured(r["throughput_median"], lo, hi))
            out.append(nf.interval(lo, hi, r["n_samples"]))
            out.append(str(r["n_samples"]))
    return out


def render(rows: list[dict[str, Any]], width: int, columns: list[str] | None = None) -> str:
    c = Console(width=width, file=io.StringIO(), color_system=None)
    print_table(c, rows, "attention layers", columns)
    return c.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("width", [100, 120])
def test_default_table_fits_with_every_number_whole(width: int) -> None:
    rows = layer_rows()
    text = render(rows, width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text
    for number in numbers(rows):
        assert re.search(rf"(?<![\d.]){re.escape(number)}(?![\d.])", text), number
    assert "mem MiB" in text and "mem MB" not in text
    # settings every row shares are said once, in the title
    assert "impl reference" in text.splitlines()[0] and "batch 64" in text


def test_runtime_rows_keep_their_status_whole_at_100_columns() -> None:
    """With the backend column, a status label is never folded (a long message may be)."""
    rows = layer_rows(4)
    for r, backend in zip(rows, ["eager", "onnxruntime", "compile", "openvino"], strict=True):
        r.update(backend=backend, precision_policy="fp32", n_samples=4, noisy=True)
        r.update(status="few-samples", message="4 samples in --budget 0.3 s")
    rows[1].update(status="error", message="Failed to convert the exported program to ONNX")
    text = render(rows, 100)
    assert max(len(line) for line in text.splitlines()) <= 100 and "…" not in text
    assert "onnxruntime" in text and text.count("few-samples (noisy)") == 3


def test_a_token_map_shows_beside_backbones() -> None:
    """Layers timed at a --tokens map keep it in a table shared with a backbone."""
    rows = layer_rows(2)
    for r in rows:
        r.update(tokens="7x7", options={"tokens": "7x7"})
    model = {**rows[0], "kind": "model", "name": "convnext_t", "tokens": "", "options": {}}
    text = render([*rows, {**model, "case_key": "m"}], 100)
    assert "tokens" in text and text.count("7x7") == 2, text


def test_narrow_terminal_gives_up_columns_not_digits() -> None:
    rows = layer_rows()
    text = render(rows, 60)
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 60
    assert nf.measured(rows[0]["throughput_median"], 1467, 1725) in text  # img/s stays


def test_chosen_columns_are_never_cut() -> None:
    rows = layer_rows(3)
    every = [c.name for c in COLUMNS]
    text = render(rows, 80, every)  # wider than 80: printed whole, the terminal wraps it
    assert "…" not in text
    for header in ("p90 ms", "roofline", "traced MMACs", "params (M)", "CoV", "max batch"):
        assert header in text
    assert "p90 ms" in text and "roofline" in text and "12%" in text
    text = render(rows, 100, ["name", "img_s"])
    assert "img/s" in text and "MMACs" not in text and "mem MiB" not in text


def test_console_honours_columns_when_piped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert console().width == 100
    monkeypatch.delenv("COLUMNS")
    assert console(width=220).width == 220


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("run") / "run"
    run = RunDir(path).create({"env_id": "e"})
    run.append_rows(layer_rows())
    return path


def test_show_piped_fits_columns(stored_run: Path) -> None:
    env = {**os.environ, "COLUMNS": "100", "PYTHONPATH": str(Path(__file__).parent.parent)}
    res = subprocess.run(
        [sys.executable, "-m", "hilobench", "show", str(stored_run)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= 100
    assert "…" not in res.stdout and "1610" in res.stdout


def test_columns_and_wide_flags(stored_run: Path, cli: CliRunner) -> None:
    code, out, err = cli(["show", str(stored_run), "--columns", "name,img_s,mem"])
    assert code == 0, err
    assert "img/s" in out and "mem MiB" in out and "95% CI" not in out
    code, out, err = cli(["show", str(stored_run), "--wide"])
    assert code == 0 and "p90 ms" in out and "roofline" in out
    code, out, err = cli(["show", str(stored_run), "--columns", "name,speed"])
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "'speed'" in err and "img_s" in err and "status" in err
    code, _, err = cli(["show", str(stored_run), "--columns", "name,stauts"])
    assert code == 2 and "unknown column 'stauts' (did you mean 'status'?)" in err
    code, _, err = cli(["show", str(stored_run), "--columns", " , "])
    assert code == 2 and "unknown column ' , '" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(["show", str(stored_run), "--wide", "--columns", "name"])
    assert code == 2 and "--wide" in err


def test_version_is_in_help(cli: CliRunner) -> None:
    code, out, _ = cli(["--help"])
    assert code == 0 and "--version" in out
    code, out, _ = cli(["--version"])
    assert code == 0 and out.startswith("hilobench ")


def test_paper_columns_have_names_for_people() -> None:
    from hilobench.core.frame import Frame
    from hilobench.report.labels import for_people

    df = Frame(
        [
            {
                "attention": "hilo",
                "x_msa": 2.25,
                "x_msa_ci_low": 2.11,
                "x_msa_ci_high": 2.36,
                "paper_x_msa": 2.04,
                "test_mem_gib": 1.5,
            }
        ]  # fmt: skip
    )
    view = for_people(df)
    assert list(view.columns) == ["attention", "× MSA (95% CI)", "paper: × MSA", "test mem (GiB)"]
    assert view["× MSA (95% CI)"] == ["2.25 (2.11–2.36)"]


def test_few_samples_show_their_count_and_no_ci_label(
    tmp_path: Path, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A budget too short for 6 samples (each sample lasts >= 20 ms: at most 2 in 0.05 s): the
    table shows n, no "95% CI" over a min–max, status few-samples, and the run says why."""
    monkeypatch.setenv("COLUMNS", "100")
    args = ["layer", "--attn", "hilo", "--dim", "32", "--heads", "2", "--tokens", "8x8",
            "--batch", "1", "--budget", "0.05", "--no-roofline"]  # fmt: skip
    code, out, err = cli([*args, "--out", str(tmp_path / "r")])
    assert code == 0, err
    assert "95% CI" not in out and "few-samples" in out
    head = next(line for line in out.splitlines() if "img/s" in line).split()
    assert head[head.index("img/s") + 1] == "n" and "interval" in head
    assert "raise --budget for an interval" in err  # one line says why
    # the title names the token map that --tokens set, not the unused image resolution
    title = out.splitlines()[0]
    assert "tokens 8x8" in title and "res 224" not in title
    (row,) = RunDir(tmp_path / "r").rows()
    assert row["status"] == "few-samples" and row["n_samples"] < 6
    assert "raise --budget" in row["message"]
    # Markdown: the table's columns (not every raw field) unless --wide
    code, md, err = cli(["show", str(tmp_path / "r"), "--format", "md"])
    assert code == 0, err
    header = md.splitlines()[0]
    assert "| n |" in header and "interval" in header and "case_key" not in header
    code, md, err = cli(["show", str(tmp_path / "r"), "--format", "md", "--wide"])
    assert code == 0 and "case_key" in md.splitlines()[0] and "n_samples" in md
    assert "| n |" in (tmp_path / "r" / "results.md").read_text().splitlines()[0]


def test_old_ok_rows_with_few_samples_load_and_read_as_few_samples(tmp_path: Path) -> None:
    rows = layer_rows(3)
    rows[1]["n_samples"] = 2  # written before the few-samples status: stored as ok
    run = RunDir(tmp_path / "old").create({"env_id": "e"})
    run.append_rows(rows)
    loaded = run.rows()
    assert [r["status"] for r in loaded] == ["ok", "ok", "ok"]
    text = render(loaded, 100)
    assert "few-samples" in text and "n=2 · " in text and "95% CI" not in text


def group_rows() -> list[dict[str, Any]]:
    """Members of a compare group with long ids and the widest intervals real ratios get."""
    ids = ["hilo_alpha0.9_window2", "sra_reduction8_fused", "msa_reference_baseline"]
    rows = []
    for i, cid in enumerate(ids):
        lo, hi, n = (0.97712, 1.40391, 22) if i else (1.0, 1.0, 22)
        rows.append(
            {
                "kind": "layer",
                "name": cid.split("_")[0],
                "case_id": cid,
                "group": "cmp_all",
                "ref": ids[0],
                "res": "224",
                "tokens": "14x14",
                "batch": 64,
                "impl": "reference",
                "mode": "infer",
                "status": "ok",
                "ratio_to_ref": 1.0 if not i else 1.1834,
                "ratio_ci_low": lo,
                "ratio_ci_high": hi,
                "ratio_n": n,
                "ratio_frac_faster": None if not i else 0.6364,
            }  # fmt: skip
        )
    rows[2].update(ratio_n=3, status="few-samples")
    return rows


def test_every_table_fits_100_columns_without_cutting_a_number() -> None:
    """The compare groups, a compare verdict and a claims table at 100 columns: no line longer,
    no number cut (each whole number cell appears as numfmt writes it)."""
    from hilobench.cli.rowtable import compare_groups_table
    from hilobench.core.terminal import render_to_text
    from hilobench.gate.claims import Claim, ClaimResult
    from hilobench.gate.comment import claims_table, verdict_tables
    from hilobench.gate.speed import SpeedResult
    from hilobench.gate.verdict import CaseResult, Verdict

    rows = group_rows()
    table = compare_groups_table(rows)
    assert table is not None
    cells = [nf.interval(r["ratio_ci_low"], r["ratio_ci_high"], r["ratio_n"]) for r in rows[1:]]
    cells += [nf.ratio(rows[1]["ratio_to_ref"], rows[1]["ratio_ci_low"], 1.40391), "64%"]
    claim = Claim.parse({"a": "hilo_alpha0.9_window2", "b": "msa_reference_baseline",
                         "metric": "throughput", "min_ratio": 1.3})  # fmt: skip
    results = [
        ClaimResult(claim, "inconclusive", "hilo 224 14x14 b64 reference infer",
                    "msa 224 14x14 b64 reference infer", 1.18342, (0.97712, 1.40391), "per-round")
    ]  # fmt: skip
    speed = SpeedResult("borderline", 0.0412, (-0.0123, 0.0977), 0.0213, 22, 22,
                        base_median_s=0.0398765, cand_median_s=0.0415432)  # fmt: skip
    case = CaseResult("k", "hilo/reference 224 b64 float32 infer [tokens=14x14]", "borderline",
                      speed=speed)  # fmt: skip
    # a wide interval (a loaded machine, few builds): whole percents, and the row still fits
    wide = SpeedResult("pass", -0.2204, (-0.8163, 1.9034), 0.54, 9, 9, unit="builds",
                       base_median_s=0.0111, cand_median_s=0.0112, first=speed)  # fmt: skip
    wide_case = CaseResult("w", "sra/reference 224 b4 float32 infer", "pass", speed=wide)
    verdict = Verdict("runs/base-2026-12-07", "runs/candidate-2026-12-07", cases=[case])
    verdict.cases.append(wide_case)
    for t, numbers in [
        (table, cells),
        (claims_table(results), ["1.2", "1.0–1.4"]),
        (
            verdict_tables(verdict)[0],
            ["39.9", "41.5", "+4.1%", "-1.2 to +9.8%", "0.021", "22", "-22%", "-82 to +190%"],
        ),
    ]:
        text = render_to_text(t, 100)
        assert max(len(line) for line in text.splitlines()) <= 100, text
        assert "…" not in text, text
        for number in numbers:
            assert re.search(rf"(?<![\d.]){re.escape(number)}(?![\d.])", text), (number, text)
    # a group's and a setting's shared values are said once, in the title
    text = render_to_text(table, 100)
    assert "cmp_all" in text.splitlines()[0] or "cmp_all" in text.split("\n\n")[0]
    assert "interval" in text and "95% CI" not in text  # one member has 3 rounds
    assert "n=3 · 1.0–1.4" in text and "(ref)" in text


def test_report_tables_say_interval_where_samples_are_few() -> None:
    from hilobench.core.frame import Frame
    from hilobench.report.labels import for_people
    from hilobench.report.tables import markdown_table, results_table

    df = Frame(
        [
            {"model": "a", "fps": 0.1234, "fps_ci_low": 0.12, "fps_ci_high": 0.127, "n_samples": 3},
            {"model": "b", "fps": 12.5, "fps_ci_low": 12.1, "fps_ci_high": 12.9, "n_samples": 30},
        ]
    )
    view = for_people(df)
    assert list(view.columns) == ["model", "FPS (interval)", "samples"]
    assert list(view["FPS (interval)"]) == ["0.123 (n=3 · 0.120–0.127)", "12.5 (12.1–12.9)"]
    # the report's per-run table: the terminal table's columns, figures right-aligned
    rows = layer_rows(8)
    md = markdown_table(results_table(rows))
    head, rule = md.splitlines()[:2]
    assert "| n |" in head and "interval" in head and "n=3 · " in md
    cols = [c.strip() for c in head.strip("|").split("|")]
    assert rule.strip("|").split("|")[cols.index("img/s")] == "---:"
    assert rule.strip("|").split("|")[cols.index("name")] == "---"
