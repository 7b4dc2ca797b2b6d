"""Generated bad input for every command: option values, mangled run files and suites.

Whatever the input, a command ends with exit 0, 2 or 3, never prints a traceback, refuses in
one line of stderr and writes nothing outside the test's directory. Values that could pass
validation are kept tiny (dim 32, 2 heads, 7x7 tokens, batch 1, a 0.01 s budget), so no
generated case measures anything big; values that must be refused may be anything.
Examples are derandomized, so every run tries the same ones.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from hilobench.attention import resolve_attentions
from hilobench.core.errors import ConfigError
from hilobench.core.names import is_glob
from hilobench.models import resolve_models
from tests.conftest import CliRunner

REPO = Path(__file__).resolve().parents[2]
GOOD_RUN = REPO / "results" / "attention_layers"
TINY = ["--dim", "32", "--heads", "2", "--tokens", "7x7", "--batch", "1", "--budget", "0.01"]
LAYER = ["layer", "--attn", "msa", *TINY, "--no-roofline"]
MODEL = ["model", "litv2_s", "--res", "64", "--batch", "1", "--budget", "0.01", "--no-roofline"]
SUITE = (
    "name: fz\ndefaults:\n  batch: 1\n  dim: 32\n  heads: 2\n  tokens: 7x7\n  budget: 0.01\n"
    "cases:\n  - layer: [msa, hilo]\n    window: 2\n"
)
#: A hang fails the test instead of stalling the run.
pytestmark = pytest.mark.timeout(120)

FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded time, reproducers by hand
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Known failures of the code under test (not of these tests); drop an entry once it passes.
KNOWN_FAILING: dict[str, str] = {}  # name → reason, for inputs that still fail (marked xfail)


def check(cli: CliRunner, args: list[str]) -> tuple[int, str, str]:
    """Run ``hilobench ARGS`` and assert the promised behaviour on any input."""
    code, out, err = cli(args)
    what = f"`hilobench {shlex.join(args)}` -> exit {code}\nstderr: {err[-2000:]}"
    assert code in (0, 2, 3), what
    assert "Traceback" not in out and "Traceback" not in err, what
    if code in (2, 3) and not out.strip():
        # a refusal: one line. (`compare` exit 3 with its verdict tables on stdout is a verdict
        # of missing cases, not a refusal; its notes may follow on stderr.)
        assert len(err.strip().splitlines()) <= 1, what
    return code, out, err


def _snapshot() -> set[tuple[str, int]]:
    """Files under the checkout's results/ and report/ (what a stray write would touch)."""
    out = set()
    for top in (REPO / "results", REPO / "report"):
        if top.exists():
            out |= {(str(p), p.stat().st_mtime_ns) for p in top.rglob("*") if p.is_file()}
    return out


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run in ``tmp_path``; fail if anything appeared or changed under the checkout."""
    before = _snapshot()
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    stray = sorted(_snapshot() - before)
    assert not stray, f"written outside the test directory: {stray[:5]}"


_counter = iter(range(10**9))


def fresh(home: Path, name: str = "x") -> Path:
    """A new directory path under ``home`` for one example."""
    return home / f"{name}{next(_counter)}"


# --- option values ------------------------------------------------------------------------

HUGE = st.integers(10**15, 10**40).map(str)
NEGATIVE = st.integers(-(10**30), -1).map(str)
JUNK = st.sampled_from(
    ["nan", "-nan", "inf", "-inf", "1e400", "-1e400", "", " ", "abc", "0x10", "--", "\x00", "１"]
)
ZERO = st.sampled_from(["0", "-0", "0.0", "1e-400"])
INT_BAD = st.one_of(NEGATIVE, ZERO, HUGE, JUNK, st.sampled_from(["1.5", "-2.5", "1/2"]))
FLOAT_BAD = st.one_of(NEGATIVE, ZERO, JUNK, st.floats(max_value=0.0).map(repr))
BUDGET_BAD = st.one_of(FLOAT_BAD, st.sampled_from(["1e10", "1e300", "86400"]))
ALPHA_BAD = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not 0.0 <= x <= 1.0).map(repr),
    JUNK,
)
#: Values that must be refused, per numeric option.
NUMBER_OPTIONS = {
    "--budget": BUDGET_BAD,
    "--batch": INT_BAD,
    "--threads": INT_BAD,
    "--dim": INT_BAD,
    "--heads": INT_BAD,
    "--alpha": ALPHA_BAD,
    "--window": INT_BAD,
    "--sr": INT_BAD,
}
#: The attention that takes each option (so the value reaches a builder).
TAKER = {"--sr": "sra", "--window": "wmsa", "--alpha": "hilo"}


def without(base: list[str], option: str) -> list[str]:
    """``base`` without ``option`` and its value."""
    i = base.index(option) if option in base else len(base)
    return base[:i] + base[i + 2 :]


def with_option(base: list[str], option: str, value: str) -> list[str]:
    """``base`` with ``option`` set to ``value`` (replacing it where ``base`` has it)."""
    return [*without(base, option), f"{option}={value}"]


def _huge(value: str) -> bool:
    return bool(re.fullmatch(r"\d{16,}", value))


@FUZZ
@given(option=st.sampled_from(sorted(NUMBER_OPTIONS)), data=st.data())
def test_layer_refuses_bad_numbers(cli: CliRunner, home: Path, option: str, data: Any) -> None:
    value = data.draw(NUMBER_OPTIONS[option], label="value")
    base = with_option(LAYER, "--attn", TAKER.get(option, "msa"))
    code, _, _ = check(cli, [*with_option(base, option, value), "--out", str(fresh(home))])
    if not _huge(value):  # a huge size may also end as an OOM / error row
        assert code == 2, f"layer {option}={value!r} was not refused"


MODEL_NUMBERS = ("--batch", "--budget", "--threads", "--alpha", "--window")


@FUZZ
@given(option=st.sampled_from(MODEL_NUMBERS), data=st.data())
def test_model_refuses_bad_numbers(cli: CliRunner, home: Path, option: str, data: Any) -> None:
    value = data.draw(NUMBER_OPTIONS[option].filter(lambda v: not _huge(v)), label="value")
    code, _, _ = check(cli, [*with_option(MODEL, option, value), "--out", str(fresh(home))])
    assert code == 2, f"model {option}={value!r} was not refused"


def _tiny_dims(text: str) -> bool:
    """No number in ``text`` above 16: any value that parses stays a tiny case."""
    return all(int(d) <= 16 for d in re.findall(r"\d+", text))


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
SHAPE_TEXT = st.one_of(
    TEXT.filter(_tiny_dims),
    st.text(alphabet="0123456789x,X -+.e", max_size=10).filter(_tiny_dims),
    st.sampled_from(
        ["0", "0x0", "7x0", "-7x7", "7x", "x7", "7x7x7", "nan", "inf", "1e9", ",", "7,,7",
         "99999999999999999999", "99999999x99999999", "18446744073709551617x1"]
    ),
)  # fmt: skip
VALID_WORDS = {
    "--dtype": {"float32", "bfloat16"},  # float16 is refused on the CPU
    "--device": {"cpu", "cpu:0"},
    "--impl": {"reference", "fused", "both"},
    "--format": {"table", "json", "csv", "md"},
}


@FUZZ
@given(option=st.sampled_from(["--tokens", "--res"]), value=SHAPE_TEXT)
def test_layer_shapes(cli: CliRunner, home: Path, option: str, value: str) -> None:
    base = LAYER if option == "--tokens" else without(LAYER, "--tokens")
    check(cli, [*with_option(base, option, value), "--out", str(fresh(home))])


@FUZZ
@given(option=st.sampled_from(["--attn", *sorted(VALID_WORDS)]), value=TEXT)
@example(option="--attn", value="msa,nope").via("a bad name in a list")
@example(option="--attn", value="*").via("a glob")
@example(option="--device", value="cuda:99").via("a device that is not there")
@example(option="--dtype", value="float16").via("float16 on the CPU")
def test_layer_words(cli: CliRunner, home: Path, option: str, value: str) -> None:
    if option == "--attn" and value.strip().lower() in ("", "all"):
        value = "nope"  # 'all' would measure every attention
    if option == "--attn" and is_glob(value):
        value += "zz9"  # a glob that matches attentions measures them: keep it matching none
    code, _, _ = check(cli, [*with_option(LAYER, option, value), "--out", str(fresh(home))])
    if value not in VALID_WORDS.get(option, ()) and not (option == "--attn" and value == "msa"):
        assert code == 2, f"layer {option}={value!r} was not refused"


NAME_TEXT = st.one_of(
    TEXT,
    st.text(alphabet="litv2_*?[]!,swmsa-:", max_size=12),
    st.sampled_from([",,,", "*", "[", "[!", "litv2_*", "*window*", "timm:", "timm:*", "\x00"]),
)


@FUZZ
@given(text=NAME_TEXT)
def test_names_and_globs_resolve_or_refuse_in_one_line(text: str) -> None:
    """Any comma list of model or attention names, globs and timm names: the registry names
    (each a real one, each once) or one ConfigError line; never another exception."""
    items = [p.strip() for p in text.split(",") if p.strip()]
    for resolve in (resolve_models, resolve_attentions):
        try:
            got = resolve(items)
        except ConfigError as e:
            assert "\n" not in str(e).strip()
            continue
        assert len(got) == len(set(got))
        assert all(is_glob(i) or i in got or ":" in i or resolve([i]) for i in items)


@FUZZ
@given(option=st.sampled_from(["--res", "--dtype", "--device", "--impl", "--attn", "--dtm"]),
       value=TEXT.filter(_tiny_dims))  # fmt: skip
def test_model_words(cli: CliRunner, home: Path, option: str, value: str) -> None:
    if value in VALID_WORDS.get(option, ()) or re.fullmatch(r"\s*\d+\s*", value):
        value += "?"
    check(cli, [*with_option(MODEL, option, value), "--out", str(fresh(home))])


GATE_BAD = {
    "--budget": BUDGET_BAD,
    "--alpha": st.one_of(JUNK, ZERO, NEGATIVE, st.sampled_from(["0.5", "1", "7"])),
    "--significance": st.one_of(JUNK, ZERO, NEGATIVE, st.sampled_from(["0.5", "1", "7"])),
    "--min-effect": st.one_of(JUNK, NEGATIVE),
}


@FUZZ
@given(option=st.sampled_from(sorted(GATE_BAD)), data=st.data())
def test_gate_refuses_bad_options_before_measuring(
    cli: CliRunner, home: Path, option: str, data: Any
) -> None:
    value = data.draw(GATE_BAD[option], label="value")
    suite = home / "fz.yaml"
    suite.write_text(SUITE)
    args = ["gate", "--suite", str(suite), "--out", str(fresh(home)), f"{option}={value}"]
    code, _, _ = check(cli, args)
    assert code == 2, f"gate {option}={value!r} was not refused"


# --- mangled files ------------------------------------------------------------------------

JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def mangled_jsonl(draw: Any, text: str) -> bytes:
    """``text`` (JSON objects, one a line) with a field, line or byte range mangled, cut short
    or replaced."""
    lines = text.splitlines()
    how = draw(st.sampled_from(["field", "drop", "truncate", "bytes", "line", "whole"]))
    i = draw(st.integers(0, max(len(lines) - 1, 0)))
    if how == "field" and lines:
        row = json.loads(lines[i])
        key = draw(st.sampled_from(sorted(row)) | st.text(max_size=6))
        row[key] = draw(JSON_VALUE)
        lines[i] = json.dumps(row)
    elif how == "drop" and lines:
        row = json.loads(lines[i])
        row.pop(draw(st.sampled_from(sorted(row))))
        lines[i] = json.dumps(row)
    elif how == "line":
        lines.insert(i, json.dumps(draw(JSON_VALUE)))
    data = ("\n".join(lines) + "\n").encode()
    if how == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif how == "bytes":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    elif how == "whole":
        data = draw(st.binary(max_size=64))
    return data


def copy_good_run(home: Path) -> Path:
    dst = fresh(home, "run")
    shutil.copytree(GOOD_RUN, dst, ignore=shutil.ignore_patterns("*.png", "report.md"))
    return dst


RESULTS_COMMANDS = ["show", "merge", "compare", "report", "export"]


def results_args(home: Path, command: str, run: Path) -> list[str]:
    """``command`` on ``run`` (and on a good copy where it takes two runs)."""
    if command in ("merge", "compare"):
        return [command, str(copy_good_run(home)), str(run)]
    if command == "export":
        return [command, str(run), "--format", "bencher"]
    return [command, str(run), *(["--out", str(fresh(home, "report"))] * (command == "report"))]


@settings(FUZZ, max_examples=30)
@given(
    which=st.sampled_from(["rows.jsonl", "env.json"]),
    command=st.sampled_from(RESULTS_COMMANDS),
    data=st.data(),
)
def test_results_commands_on_mangled_runs(
    cli: CliRunner, home: Path, which: str, command: str, data: Any
) -> None:
    run = copy_good_run(home)
    text = (GOOD_RUN / which).read_text(encoding="utf-8")
    if which == "env.json":  # one object: mangled as a one-line file
        text = json.dumps(json.loads(text))
    (run / which).write_bytes(data.draw(mangled_jsonl(text), label=which))
    check(cli, results_args(home, command, run))


# --- the smallest failing inputs found, kept as plain regression tests ---------------------


#: Layer options: (option, value); results commands: (command, file, its new content).
KNOWN: dict[str, tuple[str, ...]] = {
    "layer-dim-beyond-int64": ("--dim", str(10**20)),
    "layer-dim-overflows-a-size": ("--dim", str(10**15)),
    "layer-batch-beyond-int64": ("--batch", str(10**20)),
    "layer-budget-inf": ("--budget", "inf"),
    "layer-budget-huge": ("--budget", "1e300"),
    "compare-only-torn-rows": ("compare", "rows.jsonl", '{"case_key": "to'),
    "compare-empty-env": ("compare", "env.json", "{}"),
    "report-empty-rows": ("report", "rows.jsonl", ""),
    "show-empty-rows": ("show", "rows.jsonl", ""),
    "merge-rows-not-objects": ("merge", "rows.jsonl", "[]\n1\n"),
}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(reason=KNOWN_FAILING[n], strict=False))
        if n in KNOWN_FAILING
        else n
        for n in sorted(KNOWN)
    ],
)
def test_known_bad_inputs(cli: CliRunner, home: Path, name: str) -> None:
    if len(KNOWN[name]) == 2:
        option, value = KNOWN[name]
        check(cli, [*with_option(LAYER, option, value), "--out", str(fresh(home))])
        return
    command, file, content = KNOWN[name]
    run = copy_good_run(home)
    (run / file).write_text(content, encoding="utf-8")
    check(cli, results_args(home, command, run))


# --- mangled suites -----------------------------------------------------------------------


YAML_CHARS = st.text(st.sampled_from(":-[]{}&*!|>'\"%@`#,? \n\t0x"), min_size=1, max_size=4)
YAML_VALUES = st.sampled_from(["-1", "0", "nan", ".inf", "~", "[]", "{}", "1e999", "x", "*a"])


@st.composite
def mangled_yaml(draw: Any) -> str:
    """:data:`SUITE` with characters inserted or deleted, a line or a value replaced."""
    text = SUITE
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["insert", "delete", "line", "value"]))
        at = draw(st.integers(0, len(text)))
        if how == "insert":
            text = text[:at] + draw(YAML_CHARS) + text[at:]
        elif how == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 6)) :]
        elif how == "line":
            lines = text.splitlines()
            lines[draw(st.integers(0, len(lines) - 1))] = draw(TEXT)
            text = "\n".join(lines) + "\n"
        else:
            spots = list(re.finditer(r": [^\n\[]+\n", text))
            if spots:
                m = spots[draw(st.integers(0, len(spots) - 1))]
                text = f"{text[: m.start()]}: {draw(YAML_VALUES)}\n{text[m.end() :]}"
    return text


@settings(FUZZ, max_examples=40)
@given(text=mangled_yaml())
@example(text="").via("empty file")
@example(text="name: [unclosed\n").via("broken flow sequence")
@example(text="a: &a [*a]\n").via("a recursive alias")
def test_suite_commands_on_mangled_yaml(cli: CliRunner, home: Path, text: str) -> None:
    folder = fresh(home, "suites")
    folder.mkdir()
    suite = folder / "fz.yaml"
    suite.write_text(text, encoding="utf-8")
    code, _, _ = check(cli, ["suite", "validate", str(suite)])
    check(cli, ["suite", "list", "--dir", str(folder)])
    if code != 0:  # only what validation refuses is run, so nothing big is ever measured
        args = ["suite", "run", str(suite), "--no-isolate", "--no-roofline"]
        code, _, _ = check(cli, [*args, "--out", str(fresh(home))])
        assert code == 2, "suite run accepted a suite that validate refused"
