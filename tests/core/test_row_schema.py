"""``docs/rows.schema.json`` says what hilobench.core.row.Row says, and real rows obey it.

The schema's properties, types, required columns and status values are derived from the
``Row`` TypedDict here and must equal the file; rows from a real ``hilobench layer`` run, a
compare group, an injected OOM and a worker failure are validated against the file with the
small validator below (types, required keys, enums, consts, no unknown columns).

After changing ``Row``, regenerate the file (descriptions are kept; describe new columns)::

    python tests/core/test_row_schema.py
"""

from __future__ import annotations

import enum
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from hilobench.core.row import REQUIRED_COLUMNS, ROW_SCHEMA_VERSION, STATUSES, Row, is_measured

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "rows.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}
TINY = ["--dim", "32", "--heads", "2", "--tokens", "8x8", "--batch", "1", "--budget", "0.05"]


def type_schema(tp: Any) -> dict[str, Any]:
    """The JSON Schema of one annotation of Row."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if origin in (types.UnionType, typing.Union):
        parts = [type_schema(a) for a in args]
        if all(set(p) == {"type"} for p in parts):
            return {"type": [p["type"] for p in parts]}
        return {"anyOf": parts}
    if origin is list:
        return {"type": "array", "items": type_schema(args[0])}
    if origin is dict:
        return {"type": "object"}
    if tp in JSON_TYPES:
        return {"type": JSON_TYPES[tp]}
    raise TypeError(f"no JSON Schema for {tp!r}")


def expected_schema(descriptions: dict[str, str]) -> dict[str, Any]:
    """The schema Row stands for, with ``descriptions`` of its columns."""
    props: dict[str, Any] = {}
    for name, tp in typing.get_type_hints(Row).items():
        props[name] = {"description": descriptions.get(name, ""), **type_schema(tp)}
    props["schema"]["const"] = ROW_SCHEMA_VERSION
    return {
        "$schema": DRAFT,
        "title": "hilobench row",
        "description": (
            "One line of rows.jsonl: one measurement of one case. Columns beyond the required "
            "ones appear as the measurement gets that far; hilobench.core.row.Row is the same "
            "contract "
            "in Python."
        ),
        "type": "object",
        "properties": props,
        "required": list(REQUIRED_COLUMNS),
        "additionalProperties": False,
    }


def load_schema() -> dict[str, Any]:
    return dict(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def descriptions_of(schema: dict[str, Any]) -> dict[str, str]:
    return {k: v.get("description", "") for k, v in schema.get("properties", {}).items()}


def _type_ok(v: Any, t: str) -> bool:
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, int | float) and not isinstance(v, bool)
    py = {"string": str, "boolean": bool, "null": type(None), "array": list, "object": dict}
    return isinstance(v, py[t])


def validate(value: Any, schema: dict[str, Any], where: str = "row") -> list[str]:
    """Problems of ``value`` under ``schema`` (the keywords the row schema uses)."""
    problems: list[str] = []
    if "type" in schema:
        allowed = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(value, t) for t in allowed):
            return [f"{where}: {value!r} is not of type {' or '.join(allowed)}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        problems.append(f"{where}: {value!r} is not {schema['const']!r}")
    if "anyOf" in schema and not any(not validate(value, s, where) for s in schema["anyOf"]):
        problems.append(f"{where}: {value!r} matches none of {schema['anyOf']}")
    if isinstance(value, list) and "items" in schema:
        for i, x in enumerate(value):
            problems += validate(x, schema["items"], f"{where}[{i}]")
    if isinstance(value, dict) and "properties" in schema:
        props = schema["properties"]
        problems += [f"{where}: lacks {k!r}" for k in schema.get("required", []) if k not in value]
        for k, v in value.items():
            if k in props:
                problems += validate(v, props[k], f"{where}.{k}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{where}: unknown column {k!r}")
    return problems


def assert_valid(rows: list[dict[str, Any]]) -> None:
    schema = load_schema()
    assert rows
    for row in rows:
        # through JSON, as rows.jsonl holds them
        problems = validate(json.loads(json.dumps(row, default=str)), schema)
        assert not problems, "\n".join(problems)


def test_schema_file_is_in_step_with_row() -> None:
    schema = load_schema()
    want = expected_schema(descriptions_of(schema))
    assert set(schema["properties"]) == set(want["properties"]), "regenerate: see module doc"
    assert schema == want, "docs/rows.schema.json differs from Row: see the module docstring"
    assert schema["properties"]["status"]["enum"] == list(STATUSES)
    undescribed = [k for k, v in schema["properties"].items() if not v["description"].strip()]
    assert not undescribed, f"describe these columns in {SCHEMA_PATH.name}: {undescribed}"


def test_validator_catches_what_it_checks() -> None:
    schema = load_schema()
    ok = {k: None for k in REQUIRED_COLUMNS}
    assert any("lacks 'case_key'" in p for p in validate({}, schema))
    assert any("unknown column 'speed'" in p for p in validate({**ok, "speed": 1}, schema))
    assert any("not one of" in p for p in validate({**ok, "status": "fine"}, schema))
    assert any("not of type integer" in p for p in validate({**ok, "batch": True}, schema))
    assert any("[1]" in p for p in validate({**ok, "samples_s": [0.1, "x"]}, schema))


def test_layer_rows_obey_the_schema(tmp_path: Path, cli: Any) -> None:
    from hilobench.run.engine import add_roofline
    from hilobench.store.writer import load_rows

    out = tmp_path / "run"
    args = ["layer", "--attn", "hilo", *TINY, "--no-roofline", "--out", str(out)]
    code, _, err = cli([*args, "--format", "json"])
    assert code == 0, err
    rows = load_rows(out)
    assert [is_measured(r) for r in rows] == [True]
    roofline = dict(rows[0])
    add_roofline(roofline, 1e12)
    assert roofline["roofline"] is not None
    assert_valid([*rows, roofline])


def test_group_and_failure_rows_obey_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hilobench.core.case import Case
    from hilobench.core.plan import CompareGroup, SuiteCase, plan
    from hilobench.run.runner import Runner
    from hilobench.run.testhooks import FAULT_ENV
    from hilobench.run.worker import failure_row
    from hilobench.store.writer import RunDir

    opts = (("dim", 32), ("heads", 2), ("tokens", "8x8"))
    cases = [
        SuiteCase(Case("layer", n, batch=1, budget=0.05, options=opts), n)
        for n in ("hilo", "msa", "sra")
    ]
    group = CompareGroup("g", ("hilo", "msa", "sra"), "msa")
    monkeypatch.setenv(FAULT_ENV, "oom:sra")
    run = RunDir(tmp_path / "run").create({})
    rows = Runner(run, env_id="e", isolate=False, suite="s", roofline=False).run_units(
        plan(cases, [group])
    )
    assert [is_measured(r) for r in rows] == [True, True, False] and rows[2]["status"] == "OOM"
    assert rows[0]["ratio_to_ref"] > 0 and rows[1]["ratio_to_ref"] == 1.0
    killed = failure_row(cases[0].case.to_json(), "worker killed by SIGKILL", env_id="e")
    assert_valid([*run.rows(), dict(killed)])


def write_schema() -> None:
    old = load_schema() if SCHEMA_PATH.exists() else {}
    schema = expected_schema(descriptions_of(old))
    SCHEMA_PATH.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {SCHEMA_PATH}", file=sys.stderr)


if __name__ == "__main__":
    write_schema()
