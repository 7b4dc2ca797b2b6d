"""Cluster runs without running anything: packing, scheduler settings, the optional extra."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hilobench.cluster.launcher import require_submitit, slurm_parameters
from hilobench.cluster.packing import (
    ClusterSettings,
    pack,
    parse_time,
    settings_from,
    unit_from_json,
    unit_to_json,
    without,
)
from hilobench.core.case import Case
from hilobench.core.errors import ConfigError
from hilobench.core.plan import CompareGroup, SuiteCase, Unit, plan

CliRunner = Callable[[list[str]], tuple[int, str, str]]


def _cases() -> tuple[list[SuiteCase], list[CompareGroup]]:
    """Two compare groups at two resolutions each, and two lone cases, interleaved in order."""
    out = []
    for res in (112, 128):
        for name in ("msa", "hilo", "sra"):
            case = Case("layer", name, (res, res), 1, "cpu", "float32", budget=10.0)
            out.append(SuiteCase(case, name))
    return out, [CompareGroup("g", ("msa", "hilo"), "msa")]


def test_packing_keeps_every_compare_group_whole_and_in_order() -> None:
    cases, groups = _cases()
    units = plan(cases, groups)
    assert [len(u.items) for u in units] == [2, 1, 2, 1]
    for settings in (ClusterSettings(units_per_job=1), ClusterSettings(units_per_job=3),
                     ClusterSettings(time_min=1), ClusterSettings()):  # fmt: skip
        jobs = pack(units, settings)
        assert [u for job in jobs for u in job] == units  # nothing lost, split or reordered
        for job in jobs:
            for u in job:
                if u.group is not None:  # both members of a setting share the job
                    assert {sc.id for sc in u.items} == {"msa", "hilo"}
    assert len(pack(units, ClusterSettings(units_per_job=1))) == 4
    assert len(pack(units, ClusterSettings(units_per_job=3))) == 2
    # 14 s of work per case: one minute's half fits two units, an hour's all of them
    assert [len(j) for j in pack(units, ClusterSettings(time_min=1))] == [1, 1, 1, 1]
    assert len(pack(units, ClusterSettings())) == 1


def test_a_unit_survives_json_and_loses_only_finished_cases() -> None:
    cases, groups = _cases()
    unit = plan(cases, groups)[0]
    d = unit_to_json(unit)
    back = unit_from_json(d)
    assert [sc.case.key for sc in back.items] == [sc.case.key for sc in unit.items]
    assert back.group == unit.group and back.ref == 0
    rest = without(d, {unit.items[0].case.key})
    assert rest is not None and len(rest["items"]) == 1 and rest["ref"] is None
    assert without(d, {sc.case.key for sc in unit.items}) is None


def test_a_max_batch_search_survives_json_under_its_own_key() -> None:
    sc = SuiteCase(Case("layer", "msa", batch=1), "msa", max_batch=2**30)
    d = unit_to_json(Unit([sc]))
    (back,) = unit_from_json(d).items
    assert back.max_batch == 2**30 and back.row_key == sc.row_key != sc.case.key
    assert without(d, {sc.case.key}) is not None and without(d, {sc.row_key}) is None


@pytest.mark.parametrize(
    ("text", "minutes"),
    [(30, 30), ("45", 45), ("10:30", 11), ("2:00:00", 120), ("1-00", 1440), ("1-2:30", 1590)],
)
def test_slurm_time_formats(text: object, minutes: int) -> None:
    assert parse_time(text) == minutes


def test_settings_merge_suite_block_and_options() -> None:
    s = settings_from({"partition": ["a100", "v100"], "time": "1:00:00", "gpus_per_node": 1},
                      {"partition": "a100,cpu", "time": None})  # fmt: skip
    assert s.partitions == ("a100", "cpu") and s.time_min == 60 and s.gpus_per_node == 1
    with pytest.raises(ConfigError, match="'time'.*'soon'"):
        settings_from({}, {"time": "soon"})
    with pytest.raises(ConfigError, match="'partition'"):
        settings_from({}, {"partition": "a100;rm -rf"})
    with pytest.raises(ConfigError, match="at most 16 partitions"):
        settings_from({"partition": [f"p{i}" for i in range(17)]}, {})
    with pytest.raises(ConfigError, match="units_per_job"):
        settings_from({"units_per_job": 10**9}, {})


def test_slurm_parameters_make_a_valid_sbatch_script(tmp_path: Path) -> None:
    from submitit.slurm.slurm import _make_sbatch_string

    s = settings_from({}, {"gpus_per_node": 1, "constraint": "a100", "time": "2:00:00",
                           "array_parallelism": 4})  # fmt: skip
    script = _make_sbatch_string(command="true", folder=tmp_path, **slurm_parameters(s, "gpu"))
    for line in ("--partition=gpu", "--gpus-per-node=1", "--constraint=a100", "--time=120",
                 "--nodes=1", "--ntasks-per-node=1"):  # fmt: skip
        assert f"#SBATCH {line}" in script


def test_suite_slurm_block_is_checked(tmp_path: Path, cli: CliRunner) -> None:
    head = "cases:\n  - layer: msa\n    res: 112\n    dim: 32\n    heads: 2\n"
    bad = {"slurm:\n  partitio: a100\n": "unknown field",
           "slurm:\n  gpus_per_node: -1\n": "gpus_per_node",
           "slurm: a100\n": "expected a mapping"}  # fmt: skip
    for block, msg in bad.items():
        p = tmp_path / "s.yaml"
        p.write_text(head + block)
        code, _, err = cli(["suite", "validate", str(p)])
        assert code == 2 and msg in err and "Traceback" not in err
    p.write_text(head + "slurm:\n  partition: [a100, v100]\n  time: '1:00:00'\n")
    assert cli(["suite", "validate", str(p)])[0] == 0


def test_missing_submitit_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cli: CliRunner
) -> None:
    monkeypatch.setitem(sys.modules, "submitit", None)
    with pytest.raises(ConfigError, match=r"pip install 'hilobench\[slurm\]'"):
        require_submitit()
    p = tmp_path / "s.yaml"
    p.write_text("cases:\n  - layer: msa\n    res: 112\n    dim: 32\n    heads: 2\n")
    code, _, err = cli(
        ["suite", "run", str(p), "--executor", "local", "--out", str(tmp_path / "r")]
    )
    assert code == 2 and "hilobench[slurm]" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
    code, _, err = cli(["suite", "run", str(p), "--executor", "pbs"])
    assert code == 2 and "runner, local, slurm" in err


def test_slurm_without_sbatch_is_refused_before_anything_is_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cli: CliRunner
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    p = tmp_path / "s.yaml"
    p.write_text("cases:\n  - layer: msa\n    res: 112\n    dim: 32\n    heads: 2\n")
    code, _, err = cli(
        ["suite", "run", str(p), "--executor", "slurm", "--out", str(tmp_path / "r")]
    )
    assert code == 2 and "sbatch and srun not found" in err
    assert not (tmp_path / "r").exists()


def test_jobs_ask_for_the_whole_node_or_exactly_their_threads() -> None:
    from hilobench.cluster.packing import job_cpus

    spec = {"units": [{"items": [{"case": {"threads": 2}}, {"case": {"threads": 4}}]}]}
    whole = settings_from({}, {})
    assert whole.exclusive and slurm_parameters(whole, "p")["exclusive"] is True
    assert "cpus_per_task" not in slurm_parameters(whole, "p")
    shared = settings_from({"exclusive": False}, {})
    assert job_cpus(spec, shared) == 4  # the most threads any case of the job uses
    params = slurm_parameters(shared, "p", job_cpus(spec, shared))
    assert params["cpus_per_task"] == 4 and "exclusive" not in params
    assert job_cpus(spec, settings_from({"exclusive": False, "cpus_per_task": 8}, {})) == 8
    assert job_cpus({"units": [{"items": [{"case": {"threads": None}}]}]}, shared) is None
    with pytest.raises(ConfigError, match="exclusive"):
        settings_from({"exclusive": "no"}, {})


def test_no_exclusive_needs_threads_on_every_case(
    tmp_path: Path, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fake_slurm import install

    p = tmp_path / "s.yaml"
    p.write_text("name: s\ncases:\n  - layer: msa\n    id: solo\n")
    for k, v in install(tmp_path / "bin", tmp_path / "state").items():
        monkeypatch.setenv(k, v)
    code, _, err = cli(["suite", "run", str(p), "--executor", "slurm", "--no-exclusive",
                        "--out", str(tmp_path / "r")])  # fmt: skip
    assert code == 2 and "'solo'" in err and "threads" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
