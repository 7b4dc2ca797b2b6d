"""Bad run directories and failing outputs end as one line on stderr, never a traceback.

Every reader (``show``, ``report``, ``merge``, ``compare``, ``suite run --resume``) goes through
:mod:`hilobench.store.reader`, every writer through :mod:`hilobench.core.fileio`; a name read from a
file is printed as data (rich markup escaped) and a suite's name never leaves results/runs.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from hilobench.core import fileio
from hilobench.core.errors import ConfigError
from hilobench.gate.baseline import write_baseline
from hilobench.store.writer import RunDir, load_rows, run_dir_name

GOOD = Path(__file__).resolve().parents[2] / "results" / "attention_layers"
MARKUP = "[bold]x[/"
TINY_SUITE = (
    "name: {name}\n"
    "defaults:\n  dim: 32\n  heads: 2\n  tokens: 7x7\n  batch: 1\n  budget: 0.05\n"
    "cases:\n  - layer: msa\n"
)


def copy_good(tmp_path: Path, name: str = "run") -> Path:
    dst = tmp_path / name
    shutil.copytree(GOOD, dst)
    return dst


def rows_of(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "rows.jsonl").read_text().splitlines() if x.strip()]


def write_rows(run: Path, rows: list[dict]) -> None:
    (run / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


# --- the corruptions: each takes a good run directory and breaks one thing -------------------


def binary_rows(run: Path) -> None:
    (run / "rows.jsonl").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe\xfd" * 8 + b"\n")


def rows_a_directory(run: Path) -> None:
    (run / "rows.jsonl").unlink()
    (run / "rows.jsonl").mkdir()


def array_line(run: Path) -> None:
    lines = (run / "rows.jsonl").read_text().splitlines()
    lines[1] = json.dumps([rows_of(run)[1]])
    (run / "rows.jsonl").write_text("\n".join(lines) + "\n")


def env_a_list(run: Path) -> None:
    (run / "env.json").write_text("[1, 2]\n")


def env_unreadable(run: Path) -> None:
    if os.geteuid() == 0:  # root reads any file: a directory cannot be read by anyone
        (run / "env.json").unlink()
        (run / "env.json").mkdir()
    else:
        (run / "env.json").chmod(0)


def wrong_type(run: Path) -> None:
    rows = rows_of(run)
    rows[2]["batch"] = "sixty-four"
    write_rows(run, rows)


def corrupt_middle_line(run: Path) -> None:
    lines = (run / "rows.jsonl").read_text().splitlines()
    lines.insert(2, '{"schema": 1, "case_key": "torn')
    (run / "rows.jsonl").write_text("\n".join(lines) + "\n")


def schema_2_row(run: Path) -> None:
    rows = rows_of(run)
    write_rows(run, [*rows, {**rows[0], "schema": 2, "case_key": "f" * 12}])


BROKEN: dict[str, Callable[[Path], None]] = {
    "binary rows.jsonl": binary_rows,
    "rows.jsonl a directory": rows_a_directory,
    "a JSON array line": array_line,
    "env.json a list": env_a_list,
    "env.json unreadable": env_unreadable,
    "a field of the wrong type": wrong_type,
    "a corrupt middle line": corrupt_middle_line,
    "a schema-2 row": schema_2_row,
}


def markup_names(run: Path, env_too: bool = True) -> None:
    rows = rows_of(run)
    for r in rows:
        r["name"] = r["attention"] = MARKUP
        r["case"]["name"] = MARKUP
    write_rows(run, rows)
    if not env_too:  # a resumed run must stay on its machine class
        return
    env = json.loads((run / "env.json").read_text())
    env["cpu_model"] = "[red]cpu[/"
    (run / "env.json").write_text(json.dumps(env))


def one_error_line(stderr: str, out: str = "") -> str:
    assert "Traceback" not in stderr + out
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("hilobench: error:"), stderr
    return lines[0]


def no_temp_files(*dirs: Path) -> None:
    for d in dirs:
        assert not [p for p in d.rglob(".*") if p.is_file()], list(d.rglob(".*"))


# --- readers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("what", list(BROKEN))
@pytest.mark.parametrize("command", ["show", "report", "merge"])
def test_bad_run_dir_one_line(cli, tmp_path: Path, command: str, what: str) -> None:
    run = copy_good(tmp_path)
    BROKEN[what](run)
    args = [command, str(run)] + (["--out", str(tmp_path / "rep")] if command == "report" else [])
    code, out, err = cli(args)
    assert code == 2, (what, err)
    line = one_error_line(err, out)
    assert "rows.jsonl" in line or "env.json" in line
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize("what", list(BROKEN))
def test_compare_bad_candidate_and_base(cli, tmp_path: Path, what: str) -> None:
    good, bad = copy_good(tmp_path, "good"), copy_good(tmp_path, "bad")
    BROKEN[what](bad)
    # a bad candidate is bad input (2); a bad base an unusable baseline (3, docs/gate.md)
    code, out, err = cli(["compare", str(good), str(bad)])
    assert code == 2, (what, err)
    assert "candidate" in one_error_line(err, out)
    code, out, err = cli(["compare", str(bad), str(good)])
    assert code == 3, (what, err)
    assert "base" in one_error_line(err, out)


def test_a_corrupt_line_names_file_line_and_field(cli, tmp_path: Path) -> None:
    run = copy_good(tmp_path)
    wrong_type(run)
    line = one_error_line(cli(["show", str(run)])[2])
    assert "rows.jsonl" in line and "line 3" in line and "'batch'" in line
    schema_2_row(copy_good(tmp_path, "s2"))
    line = one_error_line(cli(["merge", str(run.parent / "s2")])[2])
    assert "schema 2" in line and "schema 1" in line


def test_torn_last_line_is_skipped_and_said(cli, tmp_path: Path) -> None:
    run = copy_good(tmp_path)
    with open(run / "rows.jsonl", "a") as f:
        f.write('{"schema": 1, "case_key": "to')
    code, out, err = cli(["show", str(run), "--format", "json"])
    assert code == 0 and len(json.loads(out)) == len(rows_of(GOOD))
    assert "torn" in err and "Traceback" not in err


def test_markup_in_names_is_printed_as_text(cli, tmp_path: Path) -> None:
    run = copy_good(tmp_path)
    markup_names(run)
    code, out, err = cli(["show", str(run)])
    assert code == 0 and "Traceback" not in err
    assert MARKUP in out and "[red]cpu[/" in err
    code, out, err = cli(["merge", str(run)])
    assert code == 0 and MARKUP in out
    code, _, err = cli(["report", str(run), "--out", str(tmp_path / "rep")])
    assert code == 0 and "Traceback" not in err
    assert MARKUP in (tmp_path / "rep" / "report.md").read_text()
    base = copy_good(tmp_path, "base")
    markup_names(base)
    code, out, err = cli(["compare", str(base), str(run)])
    assert code == 0, err
    assert "Traceback" not in err and MARKUP in out


# --- suite run --resume ------------------------------------------------------------------------


def test_suite_resume_bad_run_dir(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "tiny.yaml"
    suite.write_text(TINY_SUITE.format(name="tiny"))
    first = tmp_path / "first"
    code, _, err = cli(["suite", "run", str(suite), "--no-isolate", "--no-roofline",
                        "--out", str(first)])  # fmt: skip
    assert code == 0, err
    for what, breaks in [*BROKEN.items(), ("markup in a name", lambda r: markup_names(r, False))]:
        run = tmp_path / what.replace(" ", "_")
        shutil.copytree(first, run)
        if what == "a JSON array line" or what == "a field of the wrong type":
            write_rows(run, rows_of(run) * 3)  # these break the row in the middle
        if what == "a corrupt middle line":
            write_rows(run, rows_of(run) * 2)
        breaks(run)
        code, out, err = cli(["suite", "run", str(suite), "--no-isolate", "--no-roofline",
                              "--resume", "--out", str(run)])  # fmt: skip
        if what == "markup in a name":
            assert code == 0 and "Traceback" not in err, err
            assert MARKUP in out
            continue
        assert code == 2, (what, err)
        assert "rows.jsonl" in one_error_line(err, out) or "env.json" in err, what


def test_suite_name_cannot_leave_the_runs_root(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    suite = work / "evil.yaml"
    suite.write_text(TINY_SUITE.format(name="../../x"))
    code, _, err = cli(["suite", "run", str(suite), "--no-isolate", "--no-roofline"])
    assert code == 0, err
    made = list((work / "results" / "runs").glob("*/*/rows.jsonl"))  # results/runs/x/<stamp>
    assert len(made) == 1 and made[0].parent.parent.name == "x"
    assert not (work / "results" / "x").exists() and not (work / "x").exists()
    # markup in the name is printed as it is written, and slugged for the directory
    suite.write_text(TINY_SUITE.format(name='"[bold]y[/"'))
    code, out, err = cli(["suite", "run", str(suite), "--no-isolate", "--no-roofline"])
    assert code == 0 and "suite [bold]y[/:" in err and "suite [bold]y[/" in out
    assert list((work / "results" / "runs" / "bold-y").glob("*/rows.jsonl"))
    assert run_dir_name("../../x") == "x" and run_dir_name("a/b c") == "a-b-c"
    assert run_dir_name("..") == "suite" and run_dir_name("ok_name-1.2") == "ok_name-1.2"


# --- writers -----------------------------------------------------------------------------------


def test_compare_outputs_that_cannot_be_written(cli, tmp_path: Path) -> None:
    run = copy_good(tmp_path)
    a_file = tmp_path / "plain"
    a_file.write_text("x")
    for flag in ("--markdown", "--json"):
        for target in ("/dev/full", str(a_file / "out.md")):
            code, out, err = cli(["compare", str(run), str(run), flag, target])
            assert code == 2, (flag, target, err)
            assert target in one_error_line(err)
    assert a_file.read_text() == "x"
    no_temp_files(tmp_path)


def test_merge_and_report_outputs_that_cannot_be_written(cli, tmp_path: Path) -> None:
    run = copy_good(tmp_path)
    a_file = tmp_path / "plain"
    a_file.write_text("x")
    for args in (
        ["merge", str(run), "--out", "/dev/full"],
        ["merge", str(run), "--out", str(a_file / "m.md")],
        ["report", str(run), "--out", "/dev/full"],
        ["report", str(run), "--out", str(a_file / "rep")],
    ):
        code, out, err = cli(args)
        assert code == 2, (args, err)
        one_error_line(err, out)
    assert a_file.read_text() == "x"
    no_temp_files(tmp_path)


def test_write_text_atomic_turns_os_errors_into_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.md"
    target.write_text("old\n")
    for bad in (Path("/dev/full"), tmp_path / "out.md" / "x.md", tmp_path):
        with pytest.raises(ConfigError, match="cannot write") as e:
            fileio.write_text_atomic(bad, "new\n")
        assert "\n" not in str(e.value) and str(bad) in str(e.value)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio.os, "fsync", full)
    with pytest.raises(ConfigError, match="No space left on device"):
        fileio.write_text_atomic(target, "new\n")
    with pytest.raises(ConfigError, match="No space left on device"):
        write_baseline({"kind": "x"}, tmp_path / "baselines" / "b.json")
    assert target.read_text() == "old\n"  # whole or not at all
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["baselines", "out.md"]


def test_append_failure_keeps_the_rows_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = copy_good(tmp_path)
    before = (run / "rows.jsonl").read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio.os, "fsync", full)
    with pytest.raises(ConfigError, match="No space left on device"):
        RunDir(run).append(rows_of(run)[0])
    monkeypatch.undo()
    assert (run / "rows.jsonl").read_bytes() == before
    assert len(load_rows(run)) == len(rows_of(GOOD))


def test_disk_filling_during_a_run_is_one_line_and_keeps_the_rows(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills after the first row is on disk: the run stops with one line naming the
    file and the reason (exit 2), and the row written before stays readable."""
    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "two.yaml"
    suite.write_text(TINY_SUITE.format(name="two").replace("layer: msa", "layer: [msa, hilo]"))
    real_fsync, synced = os.fsync, []

    def fills(fd: int) -> None:
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")) == "rows.jsonl":
            synced.append(fd)
            if len(synced) > 1:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(fileio.os, "fsync", fills)
    out = tmp_path / "run"
    code, stdout, err = cli(["suite", "run", str(suite), "--no-isolate", "--no-roofline",
                             "--out", str(out)])  # fmt: skip
    assert code == 2, err
    assert "Traceback" not in err + stdout
    errors = [ln for ln in err.splitlines() if ln.startswith("hilobench: error:")]
    assert len(errors) == 1 and errors[0] == err.strip().splitlines()[-1], err
    assert "rows.jsonl" in errors[0] and "No space left on device" in errors[0]
    monkeypatch.undo()
    assert [r["name"] for r in load_rows(out)] == ["msa"]


def test_a_rows_file_that_is_a_device_is_refused_without_reading_it(cli, tmp_path: Path) -> None:
    """rows.jsonl linked to /dev/full or /dev/zero would read forever (a MemoryError after
    eating the machine's memory): it is refused as not a regular file."""
    run = copy_good(tmp_path)
    (run / "rows.jsonl").unlink()
    (run / "rows.jsonl").symlink_to("/dev/zero")
    code, out, err = cli(["show", str(run)])
    assert code == 2 and "not a regular file" in one_error_line(err, out)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_rows(run)
