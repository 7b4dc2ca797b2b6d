"""Regression gate logic: match rows, check deterministic figures, judge speed, check claims.

Pure decisions over rows; nothing here measures. The rules, and why:

- Rows are matched by ``case_key`` (the case identity), so a re-measurement on any machine
  lines up with its baseline.
- Counts (params, MACs, traced MACs) and the CPU peak tensor bytes do not depend on the
  machine's mood: they must be equal, to the unit.
- Speed is judged on the timings. A case regresses when its time rises both by at least
  ``min_effect`` and significantly (a one-sided rank test, ``p < alpha``, on >= 9 independent
  units a side). A rise that is significant but smaller, or large but not significant, is
  *borderline*: it is measured again, afresh, and fails only if the new measurement confirms
  a significant rise of at least ``confirm_fraction * min_effect``. Judging the first
  measurement at the full effect and the confirmation at a lower one lets the gate catch a
  true ``min_effect`` slowdown (about half the time at once, nearly always on confirmation)
  while noise has to fake a slowdown twice to raise a false alarm.
- The units: the gate's rows come in blocks, each a fresh build of the case on both sides
  with its samples interleaved; builds of identical code differ more than samples of one
  build, so the per-block ratio (candidate / base) is the unit, tested with the Wilcoxon
  signed-rank test. Rows without blocks but from the same interleaved rounds use per-round
  ratios; independent rows use the ratio of medians (bootstrap interval) and Mann-Whitney.
- Speeds from different environments are not compared: that is a refusal (exit 3) unless
  explicitly overridden, and the override is written into the report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as _sps

from hilobench.case import ROW_SCHEMA_VERSION
from hilobench.errors import ConfigError
from hilobench.measure import stats

EXIT_PASS = 0
EXIT_REGRESSION = 1
EXIT_USAGE = 2
EXIT_BASELINE = 3

#: Figures that must be equal between base and candidate. ``peak_mem_bytes`` is the
#: dispatch-level peak tensor bytes on the CPU only; on CUDA it is an allocator figure.
DETERMINISTIC = ("params", "macs", "macs_traced", "peak_mem_bytes")

#: Format marker of a committed deterministic baseline file (``results/baselines/*.json``).
BASELINE_KIND = "hilobench-deterministic-baseline"
BASELINE_SCHEMA = 1

#: Case fields that pair the two sides of a claim (the suite's compare-group setting).
CLAIM_PAIR_COLUMNS = (
    "kind", "res", "batch", "device", "dtype", "impl", "mode", "threads", "compile",
    "channels_last",
)  # fmt: skip

SPEED_METRICS = ("throughput", "latency")
#: Claim metric → row column (speed metrics come from the samples).
CLAIM_METRICS = {
    "throughput": "samples_s", "latency": "samples_s", "macs": "macs", "params": "params",
    "memory": "peak_mem_bytes",
}  # fmt: skip

#: Seed of the bootstrap, so a stored comparison always gives the same interval.
BOOTSTRAP_SEED = 20240617
BOOTSTRAP_RESAMPLES = 2000


class BaselineError(Exception):
    """The baseline is missing or cannot be compared with the candidate (exit code 3)."""


# --------------------------------------------------------------------------------------------
# Policy
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeedPolicy:
    """How speed is judged. ``min_effect`` is a relative slowdown of the median time."""

    min_effect: float = 0.10
    alpha: float = 0.01
    min_samples: int = 9
    confirm_fraction: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.min_effect < 10.0:
            raise ConfigError(f"min_effect must be in (0, 10), got {self.min_effect!r}")
        if not 0.0 < self.alpha < 0.5:
            raise ConfigError(f"alpha must be in (0, 0.5), got {self.alpha!r}")
        if self.min_samples < 9:
            raise ConfigError(f"min_samples must be >= 9, got {self.min_samples!r}")
        if not 0.0 < self.confirm_fraction <= 1.0:
            raise ConfigError(f"confirm_fraction must be in (0, 1], got {self.confirm_fraction!r}")

    def with_overrides(self, settings: Mapping[str, Any] | None) -> SpeedPolicy:
        """This policy with the gate settings of a suite or a case applied."""
        if not settings:
            return self
        known = {"min_effect", "alpha", "min_samples", "confirm_fraction"}
        unknown = set(settings) - known - {"budget", "min_rounds"}
        if unknown:
            raise ConfigError(f"unknown gate setting(s) {sorted(unknown)}; known: {sorted(known)}")
        changes = {k: settings[k] for k in known if settings.get(k) is not None}
        try:
            changes = {k: int(v) if k == "min_samples" else float(v) for k, v in changes.items()}
        except (TypeError, ValueError):
            raise ConfigError(f"gate settings must be numbers, got {dict(settings)}") from None
        return replace(self, **changes)


@dataclass
class Policies:
    """The default policy plus per-case overrides (by ``case_key``)."""

    default: SpeedPolicy = field(default_factory=SpeedPolicy)
    per_case: dict[str, SpeedPolicy] = field(default_factory=dict)

    def for_case(self, key: str) -> SpeedPolicy:
        return self.per_case.get(key, self.default)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One side of a comparison: rows by case key, plus its environment."""

    path: str
    rows: dict[str, dict[str, Any]]
    env: dict[str, Any]
    env_id: str
    deterministic_only: bool = False
    claims: list[dict[str, Any]] = field(default_factory=list)


def _pick_rows(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rows by case key; for a key measured twice (resumed runs) the last ``ok`` row wins."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        key = r["case_key"]
        if key in out and out[key].get("status") == "ok" and r.get("status") != "ok":
            continue
        out[key] = r
    return out


def load_baseline_file(path: Path) -> Run:
    """A committed deterministic baseline (JSON): counts per case, no timings."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise BaselineError(f"cannot read baseline {str(path)!r}: {e}") from None
    if not isinstance(data, dict) or data.get("kind") != BASELINE_KIND:
        raise BaselineError(f"{str(path)!r} is not a hilobench baseline file")
    if data.get("schema") != BASELINE_SCHEMA:
        raise BaselineError(
            f"baseline {str(path)!r} has schema {data.get('schema')!r}; this hilobench reads "
            f"schema {BASELINE_SCHEMA}: regenerate it with `hilobench gate --update-baseline`"
        )
    rows = {}
    for key, figures in (data.get("cases") or {}).items():
        rows[key] = {"case_key": key, "status": "ok", **figures}
    if not rows:
        raise BaselineError(f"baseline {str(path)!r} lists no cases")
    return Run(str(path), rows, {}, "", deterministic_only=True)


def load_run(path: Path | str, *, role: str = "base") -> Run:
    """Load a run directory (or a baseline file); refuse what cannot be compared.

    Problems with the baseline raise :class:`BaselineError` (exit 3); a candidate that is not
    there is a usage error (exit 2).
    """
    from hilobench.store import ENV, ROWS, load_rows

    p = Path(path)
    fail: type[Exception] = BaselineError if role == "base" else ConfigError
    if not p.exists():
        raise fail(f"{role} {str(p)!r} does not exist")
    if p.is_file() and p.suffix == ".json":
        if role != "base":
            raise ConfigError(f"the candidate must be a run directory, not {str(p)!r}")
        return load_baseline_file(p)
    if p.is_file():
        raise fail(f"{role} {str(p)!r} is neither a run directory nor a baseline .json file")
    if not (p / ROWS).exists():
        raise fail(f"{role} {str(p)!r} has no {ROWS}: not a run directory")
    raw = load_rows(p)
    if not raw:
        raise fail(f"{role} {str(p)!r} holds no rows")
    for r in raw:
        if r.get("schema") != ROW_SCHEMA_VERSION or "case_key" not in r:
            raise BaselineError(
                f"{role} {str(p)!r} has rows of schema {r.get('schema')!r}; this hilobench "
                f"reads schema {ROW_SCHEMA_VERSION}: re-measure the {role}"
            )
    env: dict[str, Any] = {}
    if (p / ENV).exists():
        try:
            env = json.loads((p / ENV).read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            raise BaselineError(f"{role} {str(p)!r} has an unreadable {ENV}") from None
    eid = env.get("env_id") or ""
    if not eid and env:
        from hilobench.measure.env import env_id as _env_id

        eid = _env_id(env)
    claims_path = p / "claims.json"
    claims = json.loads(claims_path.read_text()) if claims_path.exists() else []
    return Run(str(p), _pick_rows(raw), env, eid, claims=list(claims))


# --------------------------------------------------------------------------------------------
# Speed
# --------------------------------------------------------------------------------------------


@dataclass
class SpeedResult:
    """The speed verdict of one case. ``change`` is candidate time / base time - 1."""

    verdict: str  # pass | regression | borderline | improved | unjudged
    change: float | None = None
    ci: tuple[float, float] | None = None
    p_value: float | None = None
    n_base: int = 0
    n_cand: int = 0
    paired: bool = False
    unit: str = "samples"
    base_median_s: float | None = None
    cand_median_s: float | None = None
    note: str = ""
    first: SpeedResult | None = None  # the first measurement, when this is a re-measurement

    def to_json(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "first"}
        d["ci"] = list(self.ci) if self.ci else None
        d["first"] = self.first.to_json() if self.first else None
        return d


def bootstrap_ratio_ci(
    num: Sequence[float], den: Sequence[float], conf: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``median(num) / median(den)`` from independent samples."""
    x = np.asarray(num, dtype=float)
    y = np.asarray(den, dtype=float)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    mx = np.median(x[rng.integers(0, x.size, (BOOTSTRAP_RESAMPLES, x.size))], axis=1)
    my = np.median(y[rng.integers(0, y.size, (BOOTSTRAP_RESAMPLES, y.size))], axis=1)
    r = mx / my
    tail = (1.0 - conf) / 2.0
    lo, hi = np.quantile(r, [tail, 1.0 - tail])
    return float(lo), float(hi)


def is_paired(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when two rows' samples were taken in the same interleaved rounds (the gate marks
    both sides of a case with one ``round_group``)."""
    ga, gb = a.get("round_group"), b.get("round_group")
    sa, sb = a.get("samples_s") or [], b.get("samples_s") or []
    return bool(ga) and ga == gb and len(sa) == len(sb)


def same_rounds(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Rows of one run timed together round by round: a gate pair, or members of one suite
    compare group at one setting (the runner marks them ``interleaved`` with their group)."""
    if is_paired(a, b):
        return True
    sa, sb = a.get("samples_s") or [], b.get("samples_s") or []
    return (
        bool(sa)
        and len(sa) == len(sb)
        and bool(a.get("interleaved") and b.get("interleaved"))
        and bool(a.get("group"))
        and a.get("group") == b.get("group")
        and row_context(a) == row_context(b)
    )


@dataclass(frozen=True)
class Timings:
    """Per-sample seconds of both sides of one case, and how they were taken.

    ``paired``: sample *i* of each side comes from the same interleaved round. ``blocks``: the
    build (block) each round's samples came from; rounds of one build share its memory
    layout, so builds, not samples, are the independent units then.
    """

    base: Sequence[float]
    cand: Sequence[float]
    paired: bool = False
    blocks: Sequence[int] | None = None

    @classmethod
    def of_rows(cls, base: Mapping[str, Any], cand: Mapping[str, Any], prefix: str = "") -> Timings:
        """Timings of two rows (``prefix="remeasure_"`` for the gate's re-measurement)."""
        sb = list(base.get(f"{prefix}samples_s") or [])
        sc = list(cand.get(f"{prefix}samples_s") or [])
        paired = is_paired(base, cand) if not prefix else bool(base.get("round_group"))
        paired = paired and len(sb) == len(sc)
        bb, bc = base.get(f"{prefix}sample_blocks"), cand.get(f"{prefix}sample_blocks")
        blocks = list(bb) if paired and bb and bb == bc and len(bb) == len(sb) else None
        return cls(sb, sc, paired, blocks)


def _units(t: Timings) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str]:
    """The independent units: (base, cand, per-unit cand/base ratios or None, unit name)."""
    b = np.asarray(t.base, dtype=float)
    c = np.asarray(t.cand, dtype=float)
    if t.paired and t.blocks is not None:
        ids = np.asarray(t.blocks)
        keys = list(dict.fromkeys(ids.tolist()))
        ratio = np.array([np.median(c[ids == k] / b[ids == k]) for k in keys])
        bm = np.array([np.median(b[ids == k]) for k in keys])
        cm = np.array([np.median(c[ids == k]) for k in keys])
        return bm, cm, ratio, "builds"
    if t.paired:
        return b, c, c / b, "rounds"
    return b, c, None, "samples"


def _slower_p(bu: np.ndarray, cu: np.ndarray, ratio: np.ndarray | None, unit: str) -> float:
    """One-sided p-value that the candidate is slower. Paired builds: Wilcoxon signed-rank on
    the log of the per-build ratios (drift between builds cancels); otherwise Mann-Whitney on
    the samples."""
    if ratio is not None and unit == "builds":
        logs = np.log(ratio)
        if not np.any(logs != 0):
            return 1.0
        p = float(_sps.wilcoxon(logs, alternative="greater").pvalue)
        return 1.0 if math.isnan(p) else p
    return stats.rank_test(bu, cu, "less")


def _faster_p(bu: np.ndarray, cu: np.ndarray, ratio: np.ndarray | None, unit: str) -> float:
    if ratio is not None and unit == "builds":
        logs = np.log(ratio)
        if not np.any(logs != 0):
            return 1.0
        return float(_sps.wilcoxon(logs, alternative="less").pvalue)
    return stats.rank_test(bu, cu, "greater")


def judge_speed(t: Timings, policy: SpeedPolicy, *, confirming: bool = False) -> SpeedResult:
    """Verdict on one case's timings. ``confirming``: this is the re-measurement of a
    borderline case, judged at ``confirm_fraction * min_effect`` and never borderline again.
    """
    bu, cu, ratio, unit = _units(t)
    nb, nc = len(bu), len(cu)
    if nb < policy.min_samples or nc < policy.min_samples:
        return SpeedResult(
            "unjudged",
            n_base=nb,
            n_cand=nc,
            unit=unit,
            note=f"needs >= {policy.min_samples} {unit} on each side, has {nb} and {nc}",
        )
    if ratio is not None:  # median of per-round (or per-build) ratios: drift cancels
        lo, hi = stats.median_ci(ratio)
        change, ci = float(np.median(ratio)) - 1.0, (lo - 1.0, hi - 1.0)
    else:  # independent samples: ratio of medians, bootstrap interval
        lo, hi = bootstrap_ratio_ci(cu, bu)
        change, ci = stats.relative_change(bu, cu), (lo - 1.0, hi - 1.0)
    p_slower = _slower_p(bu, cu, ratio, unit)
    res = SpeedResult(
        "pass",
        change=change,
        ci=ci,
        p_value=p_slower,
        n_base=nb,
        n_cand=nc,
        paired=t.paired,
        unit=unit,
        base_median_s=float(np.median(t.base)),
        cand_median_s=float(np.median(t.cand)),
    )
    significant = p_slower < policy.alpha
    low = policy.confirm_fraction * policy.min_effect
    if confirming:
        if significant and change >= low:
            res.verdict = "regression"
            res.note = f"confirmed on re-measurement (>= {low:.0%}, p < {policy.alpha})"
        else:
            res.note = "cleared on re-measurement"
        return res
    if significant and change >= policy.min_effect:
        res.verdict = "regression"
    elif (significant and change >= low) or change >= policy.min_effect:
        res.verdict = "borderline"
        res.note = (
            "significant but below the minimum effect"
            if significant
            else "large but not significant"
        )
    elif change <= -policy.min_effect and _faster_p(bu, cu, ratio, unit) < policy.alpha:
        res.verdict = "improved"
    return res


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------


@dataclass
class FieldCheck:
    name: str
    base: Any
    cand: Any

    @property
    def ok(self) -> bool:
        return self.base == self.cand


@dataclass
class CaseResult:
    """Everything the gate says about one case."""

    key: str
    label: str
    verdict: str  # pass | regression | borderline | improved | unjudged | missing_base
    checks: list[FieldCheck] = field(default_factory=list)
    speed: SpeedResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def mismatches(self) -> list[FieldCheck]:
        return [c for c in self.checks if not c.ok]

    def to_json(self) -> dict[str, Any]:
        return {
            "case_key": self.key,
            "label": self.label,
            "verdict": self.verdict,
            "mismatches": [c.__dict__ for c in self.mismatches],
            "checked": [c.name for c in self.checks],
            "speed": self.speed.to_json() if self.speed else None,
            "notes": self.notes,
        }


def row_label(row: Mapping[str, Any]) -> str:
    """Short human label of a row (``hilo/fused 224 b16 float32 infer``)."""
    if row.get("label"):
        return str(row["label"])
    case = row.get("case")
    if isinstance(case, dict):
        try:
            from hilobench.case import Case

            return Case.from_json(case).label()
        except Exception:  # an old or foreign row: fall back to its columns
            pass
    parts = [f"{row.get('name', '?')}/{row.get('impl', '?')}", str(row.get("res", ""))]
    if row.get("batch") is not None:
        parts.append(f"b{row['batch']}")
    return " ".join(p for p in parts if p)


def deterministic_checks(base: Mapping[str, Any], cand: Mapping[str, Any]) -> list[FieldCheck]:
    """Exact checks of the counts both rows have (``peak_mem_bytes`` on the CPU only)."""
    checks = []
    for name in DETERMINISTIC:
        if name == "peak_mem_bytes" and str(cand.get("device", "cpu")).startswith("cuda"):
            continue
        if base.get(name) is None or cand.get(name) is None:
            continue
        checks.append(FieldCheck(name, base[name], cand[name]))
    return checks


Remeasure = Callable[[str], Timings | None]
"""Re-measure one case by key, afresh: its new timings, or None when it cannot be done."""


def compare_case(
    key: str,
    base: Mapping[str, Any] | None,
    cand: Mapping[str, Any],
    policy: SpeedPolicy,
    *,
    speed: bool = True,
    remeasure: Remeasure | None = None,
) -> CaseResult:
    """Judge one case: deterministic figures, status, then speed (re-measuring borderlines)."""
    label = row_label(cand)
    if base is None:
        return CaseResult(key, label, "missing_base", notes=["case not in the baseline"])
    res = CaseResult(key, label, "pass", checks=deterministic_checks(base, cand))
    b_ok, c_ok = base.get("status", "ok") == "ok", cand.get("status", "ok") == "ok"
    if b_ok and not c_ok:
        res.verdict = "regression"
        msg = cand.get("message") or ""
        res.notes.append(f"candidate {cand.get('status')}: {msg}".strip(": "))
    elif not b_ok:
        res.notes.append(f"base {base.get('status')}: speed not compared")
    if res.mismatches:
        res.verdict = "regression"
    if not speed or not (b_ok and c_ok):
        return res
    first = judge_speed(Timings.of_rows(base, cand), policy)
    res.speed = first
    if first.verdict == "borderline":
        again = remeasure(key) if remeasure is not None else None
        if again is None:
            first.note += "; not re-measured (stored results; re-run with `hilobench gate`)"
        else:
            second = judge_speed(again, policy, confirming=True)
            second.first = first
            res.speed = second
    if res.verdict == "pass":
        res.verdict = res.speed.verdict
    return res


def stored_remeasure(base: Run, cand: Run) -> Remeasure:
    """Re-measurement read from stored rows (``remeasure_samples_s``), as the gate writes."""

    def get(key: str) -> Timings | None:
        b, c = base.rows.get(key, {}), cand.rows.get(key, {})
        if not b.get("remeasure_samples_s") or not c.get("remeasure_samples_s"):
            return None
        return Timings.of_rows(b, c, prefix="remeasure_")

    return get


# --------------------------------------------------------------------------------------------
# Claims
# --------------------------------------------------------------------------------------------


@dataclass
class ClaimResult:
    """A ratio claim checked on rows. ``ratio`` is how many times better ``a`` is than ``b``:
    ``a/b`` for throughput, ``b/a`` for the costs (latency, macs, params, memory)."""

    claim: dict[str, Any]
    status: str  # pass | fail | inconclusive | missing
    a_label: str = ""
    b_label: str = ""
    ratio: float | None = None
    ci: tuple[float, float] | None = None
    method: str = ""
    note: str = ""

    @property
    def text(self) -> str:
        c = self.claim
        if c.get("name"):
            return str(c["name"])
        bounds = []
        if c.get("min_ratio") is not None:
            bounds.append(f">= {c['min_ratio']}x")
        if c.get("max_ratio") is not None:
            bounds.append(f"<= {c['max_ratio']}x")
        metric = c.get("metric", "throughput")
        return f"{c.get('a')} {metric} {' and '.join(bounds)} {c.get('b')}"

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["ci"] = list(self.ci) if self.ci else None
        d["text"] = self.text
        return d


def row_id(row: Mapping[str, Any]) -> str:
    """The suite case id of a row (its name when it came from no suite)."""
    return str(row.get("id") or row.get("case_id") or row.get("name") or "")


def row_context(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The setting two rows must share to be compared in a claim: every case field but the
    name and the options, plus the token map (as the suite's compare groups define it)."""
    case = row.get("case")
    if isinstance(case, Mapping):
        opts = case.get("options") or {}
        return tuple(
            tuple(case.get(f)) if isinstance(case.get(f), list) else case.get(f)
            for f in CLAIM_PAIR_COLUMNS
        ) + (opts.get("tokens"),)
    return tuple(row.get(f) for f in CLAIM_PAIR_COLUMNS) + (row.get("tokens"),)


def validate_claim(claim: Mapping[str, Any]) -> None:
    """Refuse a malformed claim with a message that names what is wrong."""
    if not isinstance(claim, Mapping):
        raise ConfigError(f"a claim must be a mapping, got {claim!r}")
    for k in ("a", "b"):
        if claim.get(k) in (None, ""):
            raise ConfigError(f"claim {dict(claim)} lacks {k!r} (a case id)")
    metric = claim.get("metric", "throughput")
    if metric not in CLAIM_METRICS:
        raise ConfigError(
            f"claim metric {metric!r} unknown; choose from: {', '.join(CLAIM_METRICS)}"
        )
    bounds = [b for b in ("min_ratio", "max_ratio") if claim.get(b) is not None]
    if not bounds:
        raise ConfigError(f"claim {dict(claim)} needs min_ratio and/or max_ratio")
    for b in bounds:
        v = claim[b]
        if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
            raise ConfigError(f"claim {b} must be a number > 0, got {v!r}")
    unknown = set(claim) - {"a", "b", "metric", "min_ratio", "max_ratio", "name", "note"}
    if unknown:
        raise ConfigError(f"unknown claim key(s) {sorted(unknown)}")


def _speed_ratio(
    a: Mapping[str, Any], b: Mapping[str, Any], metric: str, conf: float
) -> tuple[float, tuple[float, float], str] | None:
    """(ratio, ci, method): how many times better ``a`` is than ``b`` in speed."""
    ta, tb = a.get("samples_s") or [], b.get("samples_s") or []
    if len(ta) < 2 or len(tb) < 2:
        return None
    scale = 1.0
    if metric == "throughput":  # images per second: a larger batch counts for more
        scale = float(a.get("batch") or 1) / float(b.get("batch") or 1)
    if same_rounds(a, b):
        s = stats.ratio_summary(ta, tb, conf)  # per-round tb / ta
        ci = (s["ratio_ci_low"] * scale, s["ratio_ci_high"] * scale)
        return s["ratio_median"] * scale, ci, "per-round"
    lo, hi = bootstrap_ratio_ci(tb, ta, conf)
    ratio = float(np.median(tb)) / float(np.median(ta)) * scale
    return ratio, (lo * scale, hi * scale), "bootstrap"


def check_claims(
    rows: Iterable[Mapping[str, Any]], claims: Iterable[Mapping[str, Any]], conf: float = 0.95
) -> list[ClaimResult]:
    """Check ratio claims such as ``{a: hilo, b: sra, metric: throughput, min_ratio: 1.3}``.

    ``a`` / ``b`` are suite case ids (a row's ``id``; its name for rows from no suite). Rows of
    ``a`` and ``b`` are paired at each setting they share (resolution, impl, device, ...),
    giving one result per setting. Speed ratios come with a confidence interval (per-round
    ratios for interleaved rows, else a bootstrap of the ratio of medians): a claim passes when
    the whole interval satisfies its bounds, fails when the whole interval violates one, and
    is inconclusive otherwise. Counts are exact, so their interval is a point.
    """
    ok_rows = [r for r in rows if r.get("status", "ok") == "ok"]
    results: list[ClaimResult] = []
    for claim in claims:
        validate_claim(claim)
        claim = dict(claim)
        metric = claim.get("metric", "throughput")
        a_rows = [r for r in ok_rows if row_id(r) == str(claim["a"])]
        b_rows = [r for r in ok_rows if row_id(r) == str(claim["b"])]
        pairs = [
            (ra, rb)
            for ra in a_rows
            for rb in b_rows
            if ra is not rb and row_context(ra) == row_context(rb)
        ]
        if not pairs:
            results.append(
                ClaimResult(
                    claim,
                    "missing",
                    note=f"no rows to compare ({len(a_rows)} of a, {len(b_rows)} of b "
                    "at a shared setting)",
                )
            )
            continue
        for ra, rb in pairs:
            results.append(_check_pair(claim, metric, ra, rb, conf))
    return results


def _check_pair(
    claim: dict[str, Any], metric: str, ra: Mapping[str, Any], rb: Mapping[str, Any], conf: float
) -> ClaimResult:
    res = ClaimResult(claim, "inconclusive", a_label=row_label(ra), b_label=row_label(rb))
    if metric in SPEED_METRICS:
        got = _speed_ratio(ra, rb, metric, conf)
        if got is None:
            res.status, res.note = "missing", "rows have no timing samples"
            return res
        res.ratio, res.ci, res.method = got
    else:
        col = CLAIM_METRICS[metric]
        va, vb = ra.get(col), rb.get(col)
        if not va or vb is None:
            res.status, res.note = "missing", f"rows lack {col}"
            return res
        res.ratio = float(vb) / float(va)  # a cost: a is better when it is smaller
        res.ci, res.method = (res.ratio, res.ratio), "exact"
    lo, hi = res.ci
    lo_bound, hi_bound = claim.get("min_ratio"), claim.get("max_ratio")
    violated = (lo_bound is not None and hi < float(lo_bound)) or (
        hi_bound is not None and lo > float(hi_bound)
    )
    held = (lo_bound is None or lo >= float(lo_bound)) and (
        hi_bound is None or hi <= float(hi_bound)
    )
    res.status = "fail" if violated else "pass" if held else "inconclusive"
    return res


# --------------------------------------------------------------------------------------------
# Whole comparison
# --------------------------------------------------------------------------------------------


@dataclass
class Report:
    """The outcome of comparing a candidate with its base."""

    base: str
    candidate: str
    cases: list[CaseResult] = field(default_factory=list)
    claims: list[ClaimResult] = field(default_factory=list)
    policy: SpeedPolicy = field(default_factory=SpeedPolicy)
    env_notes: list[str] = field(default_factory=list)
    env_overridden: bool = False
    refused: str | None = None
    notes: list[str] = field(default_factory=list)
    borderline_fails: bool = True

    def count(self, verdict: str) -> int:
        return sum(1 for c in self.cases if c.verdict == verdict)

    @property
    def failed_claims(self) -> list[ClaimResult]:
        return [c for c in self.claims if c.status == "fail"]

    @property
    def exit_code(self) -> int:
        """3 when nothing could be judged; else 1 on any regression; else 3 on any case or
        claim that could not be judged; else 0. A definite regression outranks a gap."""
        if self.refused:
            return EXIT_BASELINE
        bad = self.count("regression") + len(self.failed_claims)
        if self.borderline_fails:
            bad += self.count("borderline")
        if bad:
            return EXIT_REGRESSION
        gaps = self.count("missing_base") + self.count("unjudged")
        gaps += sum(1 for c in self.claims if c.status == "missing")
        return EXIT_BASELINE if gaps else EXIT_PASS

    @property
    def headline(self) -> str:
        if self.refused:
            return f"REFUSED: {self.refused}"
        code = self.exit_code
        parts = []
        for v, word in (
            ("regression", "regression"),
            ("borderline", "borderline"),
            ("missing_base", "not in baseline"),
            ("unjudged", "unjudged"),
            ("improved", "improved"),
        ):
            n = self.count(v)
            if n:
                parts.append(f"{n} {word}")
        nf = len(self.failed_claims)
        if nf:
            parts.append(f"{nf} claim(s) failed")
        word = {EXIT_PASS: "PASS", EXIT_REGRESSION: "FAIL", EXIT_BASELINE: "INCOMPLETE"}[code]
        n = len(self.cases)
        return f"{word}: {n} case(s)" + (f", {', '.join(parts)}" if parts else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "candidate": self.candidate,
            "exit_code": self.exit_code,
            "headline": self.headline,
            "refused": self.refused,
            "env_overridden": self.env_overridden,
            "env_notes": self.env_notes,
            "notes": self.notes,
            "policy": self.policy.__dict__,
            "cases": [c.to_json() for c in self.cases],
            "claims": [c.to_json() for c in self.claims],
        }


def env_differences(base: Run, cand: Run) -> list[str]:
    """Why two runs' machine classes differ (empty when one class, or when base has no timings).

    Only the class (CPU model, physical cores, threads, GPU, torch, CUDA, dtype) decides:
    ``env_id`` also hashes RAM bytes and the kernel build, which vary within one VM type.
    """
    if base.deterministic_only:
        return []
    if not base.env or not cand.env:
        return [f"environment not recorded in {base.path if not base.env else cand.path}"]
    from hilobench.measure.env import class_differences

    return class_differences(_machine(base), _machine(cand))


def env_info_differences(base: Run, cand: Run) -> list[str]:
    """Recorded differences that leave the machine class alone (RAM size, OS string, ...)."""
    if base.deterministic_only or not base.env or not cand.env:
        return []
    from hilobench.measure.env import informational_differences

    return informational_differences(base.env, cand.env)


def _machine(run: Run) -> dict[str, str]:
    from hilobench.measure.env import machine_class

    return machine_class(run.env, run.rows.values())


def compare_runs(
    base: Run,
    cand: Run,
    *,
    policies: Policies | None = None,
    claims: Sequence[Mapping[str, Any]] | None = None,
    allow_env_mismatch: bool = False,
    remeasure: Remeasure | None = None,
    borderline_fails: bool = True,
    same_job: bool = False,
) -> Report:
    """Compare every candidate case with the base. Refuses (``report.refused``) when the
    environments differ and no override was given; speed is never compared with a
    deterministic-only baseline. ``same_job``: both sides were just measured interleaved on
    this machine (the gate), so their environment is the same by construction."""
    policies = policies or Policies()
    report = Report(
        base.path, cand.path, policy=policies.default, borderline_fails=borderline_fails
    )
    speed = not base.deterministic_only
    diffs = env_differences(base, cand)
    info = env_info_differences(base, cand)
    if info:
        from hilobench.measure.env import machine_class_label

        where = "" if diffs else f" (same machine class: {machine_class_label(_machine(cand))})"
        report.notes.append(
            f"recorded environment differences that do not affect comparability{where}: "
            + "; ".join(info)
        )
    if same_job:
        if diffs:
            report.notes.append(
                "the two revisions record this machine differently: " + "; ".join(diffs)
            )
        diffs = []
    if diffs:
        report.env_notes = diffs
        if not allow_env_mismatch:
            report.refused = (
                "environments differ, speeds are not comparable ("
                + "; ".join(diffs)
                + "); measure both here with `hilobench gate`, or pass --allow-env-mismatch"
            )
            return report
        report.env_overridden = True
    if base.deterministic_only:
        report.notes.append("baseline holds deterministic figures only: speed not compared")
    if remeasure is None:
        remeasure = stored_remeasure(base, cand)
    for key, row in cand.rows.items():
        report.cases.append(
            compare_case(
                key,
                base.rows.get(key),
                row,
                policies.for_case(key),
                speed=speed,
                remeasure=remeasure,
            )
        )
    if any(c.speed is not None and c.speed.unit == "samples" for c in report.cases):
        tb, tc = base.env.get("timestamp"), cand.env.get("timestamp")
        when = f" ({tb} and {tc})" if tb and tc else ""
        report.notes.append(
            f"base and candidate were timed separately{when}: what changed on the machine "
            "between the runs is not cancelled, so speed verdicts are indicative; "
            "`hilobench gate` times both sides interleaved"
        )
    all_claims = list(claims) if claims is not None else list(cand.claims)
    if all_claims:
        report.claims = check_claims(cand.rows.values(), all_claims)
    return report


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:+.1%}"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:.3g}"


def _p(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2g}" if x >= 1e-3 else "<0.001"


def case_cells(c: CaseResult) -> list[str]:
    """One table row: case, counts, base / candidate median ms, change, CI, p, n, verdict."""
    counts = "ok" if c.checks and not c.mismatches else ("-" if not c.checks else "")
    if c.mismatches:
        counts = "; ".join(
            f"{m.name} {m.base}→{m.cand}"
            + (f" ({m.cand - m.base:+d})" if isinstance(m.base, int) else "")
            for m in c.mismatches
        )
    s = c.speed
    verdict = c.verdict
    if s and s.first is not None:
        verdict += " (re-measured)"
    if c.verdict == "borderline" and s and "not re-measured" in s.note:
        verdict += " (not re-measured)"
    ci = f"{_pct(s.ci[0])}…{_pct(s.ci[1])}" if s and s.ci else "-"
    return [
        c.label,
        counts,
        _ms(s.base_median_s) if s else "-",
        _ms(s.cand_median_s) if s else "-",
        _pct(s.change) if s else "-",
        ci,
        _p(s.p_value) if s else "-",
        (f"{s.n_base} {s.unit}" if s.n_base == s.n_cand else f"{s.n_base}/{s.n_cand}")
        if s and s.n_base
        else "-",
        verdict,
    ]


CASE_HEADER = ["case", "counts", "base ms", "cand ms", "change", "95% CI", "p", "n", "verdict"]
CLAIM_HEADER = ["claim", "rows", "ratio", "95% CI", "method", "verdict"]


def claim_cells(c: ClaimResult) -> list[str]:
    ratio = "-" if c.ratio is None else f"{c.ratio:.3f}"
    ci = "-" if c.ci is None else f"{c.ci[0]:.3f}…{c.ci[1]:.3f}"
    rows = f"{c.a_label} vs {c.b_label}" if c.a_label else c.note
    return [c.text, rows, ratio, ci, c.method or "-", c.status]


def _policy_line(r: Report) -> str:
    p = r.policy
    return (
        f"A case regresses when its time rises by >= {p.min_effect:.0%} and a one-sided rank "
        f"test gives p < {p.alpha} (>= {p.min_samples} builds or samples a side); borderline "
        f"cases are re-measured once and fail if a rise of "
        f">= {p.confirm_fraction * p.min_effect:.0%} is confirmed. Counts "
        f"({', '.join(DETERMINISTIC)}) must be equal."
    )


def to_markdown(report: Report, title: str = "hilobench gate") -> str:
    """A pull-request comment: verdict, environment, failing cases first, then claims."""
    lines = [f"### {title}: {report.headline}", ""]
    lines.append(f"- base: `{report.base}`")
    lines.append(f"- candidate: `{report.candidate}`")
    if report.env_overridden:
        lines.append(
            "- **environment mismatch overridden** (--allow-env-mismatch): "
            + "; ".join(report.env_notes)
        )
    elif report.env_notes:
        lines.append("- environment: " + "; ".join(report.env_notes))
    for n in report.notes:
        lines.append(f"- {n}")
    if report.refused:
        return "\n".join(lines) + "\n"
    lines += ["", _policy_line(report), ""]
    order = {"regression": 0, "borderline": 1, "missing_base": 2, "unjudged": 3}
    cases = sorted(report.cases, key=lambda c: order.get(c.verdict, 9))
    if cases:
        lines.append("| " + " | ".join(CASE_HEADER) + " |")
        lines.append("|" + "|".join("---" for _ in CASE_HEADER) + "|")
        for c in cases:
            cells = [x.replace("|", "\\|") for x in case_cells(c)]
            if c.verdict in ("regression", "borderline"):
                cells[-1] = f"**{cells[-1]}**"
            lines.append("| " + " | ".join(cells) + " |")
        notes = [(c.label, n) for c in cases for n in c.notes]
        notes += [(c.label, c.speed.note) for c in cases if c.speed and c.speed.note]
        if notes:
            lines.append("")
            lines += [f"- {label}: {n}" for label, n in notes]
    if report.claims:
        lines += ["", "| " + " | ".join(CLAIM_HEADER) + " |"]
        lines.append("|" + "|".join("---" for _ in CLAIM_HEADER) + "|")
        for c in report.claims:
            cells = [x.replace("|", "\\|") for x in claim_cells(c)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def rich_tables(report: Report) -> list[Any]:
    """Terminal view: the cases table and, when there are claims, the claims table."""
    from rich.table import Table

    style = {"regression": "red", "borderline": "yellow", "improved": "green"}
    t = Table(title=report.headline, header_style="bold")
    for h in CASE_HEADER:
        t.add_column(h, justify="left" if h in ("case", "counts", "verdict") else "right")
    for c in report.cases:
        cells = case_cells(c)
        color = style.get(c.verdict)
        if color:
            cells[-1] = f"[{color}]{cells[-1]}[/{color}]"
        t.add_row(*cells)
    out: list[Any] = [t]
    if report.claims:
        ct = Table(title="claims", header_style="bold")
        for h in CLAIM_HEADER:
            ct.add_column(h, justify="right" if h in ("ratio", "95% CI") else "left")
        for c in report.claims:
            cells = claim_cells(c)
            color = {"pass": "green", "fail": "red", "inconclusive": "yellow"}.get(c.status)
            if color:
                cells[-1] = f"[{color}]{cells[-1]}[/{color}]"
            ct.add_row(*cells)
        out.append(ct)
    return out
