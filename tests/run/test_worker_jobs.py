"""The worker's job protocol: every kind survives its JSON form, one table runs every kind, a
bad job is refused by name, and the test hooks find a case's fault."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hilobench.core.case import Case
from hilobench.core.row import is_measured
from hilobench.run import testhooks, worker
from hilobench.run.jobs import (
    JOB_TYPES,
    CaseJob,
    FreeJob,
    GateJob,
    GroupJob,
    JobResult,
    PeakJob,
    job_from_json,
    job_to_json,
)
from hilobench.run.worker import RUNNERS, run_job

CASE = Case(
    "layer", "msa", (64, 64), 1, options=(("dim", 32), ("heads", 2), ("tokens", "4x4")), budget=0.05
)


def test_every_kind_survives_json_and_has_a_runner() -> None:
    jobs = [
        CaseJob(CASE.to_json(), case_id="a", env_id="e", timed=False, peak_macs_per_s=1e9),
        GroupJob("g", [CASE.to_json()], [{"status": "ok"}], ref=0, case_ids=["a"]),
        PeakJob("cpu", "float32"),
        FreeJob("cuda"),
        GateJob(protocol=2, cases=[CASE.to_json()], count=False),
    ]
    # every kind has a runner: the worker's table, or the gate's side process for gate jobs
    assert {j.kind for j in jobs} == set(JOB_TYPES)
    assert set(RUNNERS) | {GateJob} == set(JOB_TYPES.values()) and GateJob not in RUNNERS
    for job in jobs:
        data = job_to_json(job)
        assert data["kind"] == job.kind and job_from_json(data) == job


def test_the_wire_form_is_the_flat_object_older_workers_read() -> None:
    assert job_to_json(PeakJob("cpu", "float32")) == {
        "kind": "peak",
        "device": "cpu",
        "dtype": "float32",
    }
    # a field this revision does not know is ignored, as a newer driver may send one
    assert job_from_json({"kind": "free", "device": "cpu", "later": 1}) == FreeJob("cpu")


def test_bad_jobs_and_results_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown job kind 'nope'.*case, group"):
        run_job({"kind": "nope"})
    with pytest.raises(ValueError, match="bad peak job"):
        job_from_json({"kind": "peak", "device": "cpu"})
    with pytest.raises(ValueError, match="rows"):
        JobResult.from_json({"row": []})
    assert JobResult.from_json({"rows": [{"a": 1}]}).rows == [{"a": 1}]


def test_run_job_runs_a_case_job_and_its_json_form_alike() -> None:
    job = CaseJob(CASE.to_json(), timed=False, count=False)
    (a,) = run_job(job)
    (b,) = run_job(job_to_json(job))
    assert is_measured(a) and is_measured(b) and a["case_key"] == b["case_key"] == CASE.key


def test_test_hooks_match_a_case_by_id_name_or_key(monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASE.to_json()
    assert testhooks.fault_for(case, "a") is None
    monkeypatch.setenv(testhooks.FAULT_ENV, f"oom:a,error:{CASE.key}")
    assert testhooks.fault_for(case, "a") == "oom"
    assert testhooks.fault_for(case, "b") == "error"
    monkeypatch.setenv(testhooks.FAULT_ENV, "term:msa,bogus:msa")
    assert testhooks.fault_for(case) == "term"
    with pytest.raises(RuntimeError, match="injected"):
        monkeypatch.setenv(testhooks.FAULT_ENV, "error:msa")
        testhooks.raise_fault(case)


def test_row_status_is_an_enum_that_stored_rows_spell_as_words() -> None:
    from hilobench.core.errors import ConfigError
    from hilobench.core.row import STATUSES, Status
    from hilobench.run.worker import failure_row
    from hilobench.store.reader import check_row

    assert "ok" in STATUSES and "few-samples" in STATUSES and Status("OOM") is Status.OOM
    row = dict(failure_row(CASE.to_json(), "why"))
    assert row["status"] is Status.ERROR and json.loads(json.dumps(row))["status"] == "error"
    stored = json.loads(json.dumps(row))
    assert check_row(stored, "r")["status"] == Status.ERROR
    with pytest.raises(ConfigError, match="status"):
        check_row({**stored, "status": "broken"}, "r")


def test_a_case_or_group_job_hands_every_field_to_its_measuring_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    got: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def record(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        got.append((args, kwargs))
        return [{"status": "ok"}]

    monkeypatch.setattr(worker, "measure_case", lambda *a, **k: record(*a, **k)[0])
    monkeypatch.setattr(worker, "measure_group", record)
    run_job(CaseJob({"c": 1}, case_id="a", env_id="e", count=False, timed=False,
                    peak_macs_per_s=1e9))  # fmt: skip

    def hear(record: dict[str, Any]) -> None:
        pass

    run_job(GroupJob("g", [{"c": 1}], [{"status": "ok"}], ref=0, case_ids=["a"],
                     peak_macs_per_s=2.0, partial_path="p", resume={"r": 1}, stamp={"s": 1}),
            hear)  # fmt: skip
    assert got[0] == (
        ({"c": 1},),
        {"case_id": "a", "env_id": "e", "count": False, "timed": False, "peak_macs_per_s": 1e9},
    )
    assert got[1] == (
        ([{"c": 1}], [{"status": "ok"}]),
        {"group": "g", "ref": 0, "case_ids": ["a"], "peak_macs_per_s": 2.0, "partial_path": "p",
         "resume": {"r": 1}, "stamp": {"s": 1}, "on_round": hear},
    )  # fmt: skip
