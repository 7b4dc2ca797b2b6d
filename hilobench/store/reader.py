"""Reading a run directory: the one loader every reader uses (``show``, ``report``, ``merge``,
``compare``, ``suite run --resume``).

``env.json`` must be a JSON object; every line of ``rows.jsonl`` a JSON object whose known
columns have the types :class:`hilobench.core.row.Row` declares (an integer column takes any whole
number, as in JSON Schema) and whose ``schema`` is :data:`~hilobench.core.row.ROW_SCHEMA_VERSION`.
Which columns must be there is the caller's: the judge needs every one of
:data:`~hilobench.core.row.REQUIRED_COLUMNS`, the readers that only show rows (``show``, ``report``,
``merge``, resuming) need :data:`SHOWN_COLUMNS` and read a row without ``schema`` (written by
hand or by another tool) as this version. Anything else (bytes that are not UTF-8, a
directory where a file belongs, a JSON array, a field of the wrong type, an OS error) is a
:class:`~hilobench.core.errors.ConfigError` of one line naming the file, the line and the field; a
row of another schema is a :class:`RowSchemaError`. Only a torn last line (no newline: a write
cut by a kill) is skipped, and a note says so; a bad line anywhere else is an error.
:func:`repair_torn_tail` cuts such a line off before a resumed run appends.
"""

from __future__ import annotations

import enum
import json
import os
import stat
import sys
import types
import typing
from pathlib import Path
from typing import Any

from hilobench.core.errors import ConfigError
from hilobench.core.fileio import os_reason
from hilobench.core.row import REQUIRED_COLUMNS, ROW_SCHEMA_VERSION, Row

ROWS = "rows.jsonl"
ENV = "env.json"

#: Columns every row must have to be shown, reported or resumed: its identity and outcome.
SHOWN_COLUMNS = ("case_key", "status")

#: Declared type of every known column (columns beyond these are kept unchecked).
COLUMN_TYPES: dict[str, Any] = typing.get_type_hints(Row)


class RowSchemaError(ConfigError):
    """Rows of another schema version: they are never read as this version's rows."""


def read_bytes(path: Path, what: str = "file") -> bytes:
    """A file's bytes; an OS problem (missing, a directory, no permission) as one line. A device
    or pipe is refused unread: ``/dev/zero`` or ``/dev/full`` would be read until memory ran
    out."""
    try:
        mode = path.stat().st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # a directory: the OS says so
            raise ConfigError(f"cannot read {what} {str(path)!r}: not a regular file")
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {what} {str(path)!r}: {os_reason(e)}") from None


def read_json(path: Path, what: str = "file") -> Any:
    """A whole JSON file, decoded; undecodable bytes or JSON as one line naming the file."""
    data = read_bytes(path, what)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what} {str(path)!r} is not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"{what} {str(path)!r} is not valid JSON (line {e.lineno}: {e.msg})"
        ) from None


def read_env(run_dir: Path | str) -> dict[str, Any]:
    """A run's ``env.json`` as a dict ({} when there is none); it must be a JSON object."""
    p = Path(run_dir) / ENV
    if not p.exists() and not p.is_symlink():
        return {}
    env = read_json(p, ENV)
    if not isinstance(env, dict):
        raise ConfigError(f"{ENV} {str(p)!r} holds a JSON {_json_type(env)}; expected an object")
    peaks = env.get("peak_macs_per_s")
    if peaks is not None and not isinstance(peaks, dict):
        raise ConfigError(f"{ENV} {str(p)!r}: field 'peak_macs_per_s' must be an object")
    return env


def rows_file(path: Path | str) -> Path:
    """``path/rows.jsonl`` for a run directory, ``path`` itself otherwise."""
    p = Path(path)
    return p / ROWS if p.is_dir() else p


def load_rows(
    path: Path | str, *, required: tuple[str, ...] = SHOWN_COLUMNS, note_torn: bool = True
) -> list[dict[str, Any]]:
    """Checked rows of a run directory (or of a rows.jsonl file), in file order; every row
    has the ``required`` columns."""
    p = rows_file(path)
    if not p.exists():
        raise ConfigError(f"no results at {str(p)!r}: expected a run directory with {ROWS}")
    lines = read_bytes(p, ROWS).split(b"\n")
    rows = []
    torn_line = 0
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        torn = n == len(lines)  # the last piece had no newline: a write cut short
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            if torn:
                torn_line = n
                continue
            why = "not UTF-8 text" if isinstance(e, UnicodeDecodeError) else "not valid JSON"
            raise ConfigError(f"{str(p)!r} line {n}: {why}; every line must be a row") from None
        rows.append(check_row(obj, f"{str(p)!r} line {n}", required))
    _label_policy(rows, p)
    if torn_line and not rows:  # nothing usable: one line that says why, not a note and an error
        raise ConfigError(
            f"{str(p)!r} holds no complete row: line {torn_line} is torn (an interrupted write)"
        )
    if torn_line and note_torn:
        sys.stderr.write(
            f"hilobench: note: {str(p)!r} line {torn_line} is torn (an interrupted write); "
            "skipped\n"
        )
    return rows


def _label_policy(rows: list[dict[str, Any]], rows_path: Path) -> None:
    """Rows from before the precision policy get the one their run's recorded flags mean."""
    from hilobench.measure.precision import label_legacy  # no torch

    try:
        env = read_env(rows_path.parent)
    except ConfigError:  # a broken env.json is reported by the readers that need it
        return
    label_legacy(rows, env)


def check_row(obj: Any, where: str, required: tuple[str, ...] = REQUIRED_COLUMNS) -> dict[str, Any]:
    """``obj`` if it is a row of this schema with the ``required`` columns, each known column
    of its declared type; else a one-line ConfigError that starts with ``where``."""
    if not isinstance(obj, dict):
        raise ConfigError(f"{where}: a JSON {_json_type(obj)}, expected a row object")
    if "schema" in obj and obj["schema"] != ROW_SCHEMA_VERSION:
        raise RowSchemaError(
            f"{where}: row schema {obj['schema']!r}; this hilobench reads schema "
            f"{ROW_SCHEMA_VERSION}: re-measure it"
        )
    for col in required:
        if col not in obj:
            raise ConfigError(f"{where}: field {col!r} is missing")
    for col, value in obj.items():
        tp = COLUMN_TYPES.get(col)
        if tp is not None and not _is(value, tp):
            raise ConfigError(
                f"{where}: field {col!r} is {_json_type(value)} {_short(value)}, expected "
                f"{_describe(tp)}"
            )
    return obj


def _is(value: Any, tp: Any) -> bool:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True
    if origin is typing.Literal:
        return value in args
    if isinstance(tp, type) and issubclass(tp, enum.Enum):  # a string-valued enum (Status)
        return value in {m.value for m in tp}
    if origin in (types.UnionType, typing.Union):
        return any(_is(value, a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(_is(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:  # JSON has numbers: 25e6 is a whole number
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, tp)


def _describe(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in args)
    if origin is list:
        return f"a list of {_describe(args[0])}"
    names = {dict: "an object", str: "a string", int: "an integer", float: "a number"}
    return {bool: "true or false", type(None): "null"}.get(tp) or names.get(origin or tp, str(tp))


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    return {dict: "object", list: "array", str: "string", int: "integer", float: "number"}.get(
        type(v), "null" if v is None else type(v).__name__
    )


def _short(v: Any) -> str:
    text = json.dumps(v, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def repair_torn_tail(p: Path) -> str | None:
    """Cut a row torn by a kill (a last line without its newline) off the rows file ``p``, so
    the next appended row starts on a line of its own; a complete last row only gets its
    newline. Returns a note saying what was done, None when the file was whole; an OS error is
    one ConfigError line."""
    try:
        if not p.is_file() or not p.stat().st_size:
            return None
        with open(p, "rb+") as f:
            data = f.read()
            if data.endswith(b"\n"):
                return None
            cut = data.rfind(b"\n") + 1
            try:
                json.loads(data[cut:].decode("utf-8"))
                whole = True
            except ValueError:  # JSONDecodeError and UnicodeDecodeError
                whole = False
            if whole:
                f.write(b"\n")
            else:
                f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise ConfigError(f"cannot repair {str(p)!r}: {os_reason(e)}") from None
    if whole:
        return f"note: {p}: the last row had no newline; added it"
    return f"note: {p}: removed a torn last line ({len(data) - cut} bytes) of an interrupted run"
