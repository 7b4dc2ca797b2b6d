"""Every file hilobench writes gets the mode the user's umask gives, like any program's files:
0644 under umask 022 (others may read results), 0600 under 077. The atomic writer creates its
temporary file itself instead of with ``tempfile.mkstemp``, which is always 0600."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hilobench.core import fileio
from hilobench.measure import roofline
from hilobench.run import worker
from hilobench.store.writer import RunDir

#: a stored row of the shipped results (a whole row: the run directory reads it back)
GOOD = Path(__file__).resolve().parents[2] / "results" / "attention_layers" / "rows.jsonl"
ROW = json.loads(GOOD.read_text().splitlines()[0])


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_run_files_follow_the_umask(tmp_path: Path, umask: int) -> None:
    want = 0o666 & ~umask
    run = RunDir(tmp_path / "run").create({"env_id": "e"})
    run.append(ROW)
    run.record_peak("cpu", "float32", 1e9)  # env.json rewritten atomically
    run.write_tables()
    files = sorted(p.name for p in run.path.iterdir())
    assert files == ["env.json", "results.csv", "results.md", "rows.jsonl"]
    assert {f: oct(mode(run.path / f)) for f in files} == {f: oct(want) for f in files}
    assert mode(run.path) == 0o777 & ~umask


def test_atomic_writers_follow_the_umask(tmp_path: Path, umask: int) -> None:
    want = 0o666 & ~umask
    fileio.write_text_atomic(tmp_path / "a.md", "x\n")
    fileio.write_bytes_atomic(tmp_path / "b.json", b"{}")
    with fileio.atomic_path(tmp_path / "c.png") as tmp:
        assert mode(tmp) == want  # the temporary file already has the final mode
        tmp.write_bytes(b"png")
    # replacing a file of another mode gives the umask's mode too
    (tmp_path / "d.csv").write_text("old")
    os.chmod(tmp_path / "d.csv", 0o600)
    fileio.write_text_atomic(tmp_path / "d.csv", "new")
    for name in ("a.md", "b.json", "c.png", "d.csv"):
        assert mode(tmp_path / name) == want, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.md", "b.json", "c.png", "d.csv"]


def test_worker_result_and_peak_cache_follow_the_umask(
    tmp_path: Path, umask: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    want = 0o666 & ~umask
    job, out = tmp_path / "job.json", tmp_path / "rows.json"
    job.write_text(json.dumps({"kind": "case", "case": {}}))
    monkeypatch.setattr(worker, "_die_with_parent", lambda: None)
    monkeypatch.setattr(worker, "_process_fault", lambda job: None)
    monkeypatch.setattr(worker, "run_job", lambda job: [ROW])
    assert worker.main([str(job), str(out)]) == 0
    assert json.loads(out.read_text())["rows"] == [ROW] and mode(out) == want
    cache = tmp_path / "cache" / "peak.json"
    roofline._write_cache(cache, "cpu/float32", roofline.Peak(1e9, 512, 0.1))
    assert mode(cache) == want and "cpu/float32" in json.loads(cache.read_text())
