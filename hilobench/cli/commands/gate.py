"""``hilobench compare`` and ``hilobench gate``: the regression gate on the command line.

Exit codes: 0 pass, 1 regression (or a failed claim), 2 usage error, 3 missing or
incompatible baseline (no such run, no rows, another row schema, another environment without
``--allow-env-mismatch``, a case the baseline lacks, a revision the gate cannot measure), 4
unjudged (all compared, but a case had too few samples for a verdict).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from hilobench.core.case import check_budget
from hilobench.core.errors import ConfigError, check_choice
from hilobench.core.fileio import write_text_atomic
from hilobench.core.terminal import console, print_fitted
from hilobench.gate.baseline import baseline_path, compute_baseline, computed_rows, write_baseline
from hilobench.gate.gate_errors import EXIT_BASELINE, EXIT_PASS, BaselineError, GateError
from hilobench.gate.policy import Policies, SpeedPolicy, suite_policies
from hilobench.gate.verdict import Verdict

err = Console(stderr=True)


def _fail(message: str, code: int) -> typer.Exit:
    sys.stderr.write(f"hilobench: error: {' '.join(message.split())}\n")
    return typer.Exit(code)


SIGNIFICANCE_HELP = "Significance level of the rank test (0.01)."
#: The old spelling of --significance, still accepted (``--alpha`` is HiLo's Lo-Fi share).
OLD_ALPHA = typer.Option(None, "--alpha", hidden=True, help=SIGNIFICANCE_HELP)


def _policy(
    min_effect: float | None, significance: float | None, old_alpha: float | None = None
) -> SpeedPolicy:
    if old_alpha is not None and significance is not None:
        raise ConfigError("--alpha is the old spelling of --significance; give one of them")
    level = old_alpha if old_alpha is not None else significance
    policy = SpeedPolicy().with_overrides({"min_effect": min_effect, "alpha": level})
    if old_alpha is not None:  # after the checks: a refused value gets its one line only
        sys.stderr.write("hilobench: note: --alpha here is now spelled --significance\n")
    return policy


def _check_writable_file(path: Path | None) -> None:
    if path is None:
        return
    parent = path.parent if str(path.parent) else Path(".")
    if path.exists() and path.is_dir():
        raise ConfigError(f"output file {str(path)!r} is a directory")
    if parent.exists() and not parent.is_dir():
        raise ConfigError(f"cannot write {str(path)!r}: {str(parent)!r} is not a directory")


def _check_out_dir(path: Path | None) -> None:
    """``--out`` must be a directory or become one: refused when it, or the nearest of its
    parents that exists, is a file."""
    for p in (path, *path.parents) if path is not None else ():
        if p.exists():
            if not p.is_dir():
                shown = "is a file" if p == path else f"is inside {str(p)!r}, a file"
                raise ConfigError(f"--out {str(path)!r} {shown}; give a directory (new or not)")
            return


def _emit(report: Verdict, title: str, markdown: Path | None, json_out: Path | None) -> None:
    """Write the pull-request comment and the JSON report when asked (first, whole or not at
    all: a failed write is one ConfigError line and nothing else), then print the tables (wide
    when piped, for CI logs)."""
    from hilobench.gate.comment import verdict_markdown, verdict_tables  # numpy

    written = []
    for path, text in (
        (markdown, verdict_markdown(report, title) if markdown else ""),
        (json_out, json.dumps(report.to_json(), indent=2, default=str) + "\n" if json_out else ""),
    ):
        if path is not None:
            write_text_atomic(path, text)
            written.append(path)
    out = console(width=200)
    if report.refused:
        return  # the caller's one error line says why; the files above still hold the details
    else:
        for t in verdict_tables(report):  # cells from files are escaped there: data
            print_fitted(out, t)
        for n in report.notes:
            err.print(f"[dim]{escape(n)}[/dim]", highlight=False)
        if report.env_overridden:
            err.print(
                "[yellow]environment mismatch overridden:[/yellow] "
                + escape("; ".join(report.env_notes)),
                highlight=False,
            )
    for path in written:
        err.print(escape(f"wrote {path}"), highlight=False)


def _suite_settings(
    suite_spec: str | None, policy: SpeedPolicy
) -> tuple[Policies, list[dict[str, Any]]]:
    """Per-suite and per-case speed policies and the claims of a suite (when one is given)."""
    if not suite_spec:
        return Policies(policy), []
    from hilobench.suite.loader import find_suite, load_suite  # with yaml ~25 ms at start-up

    suite = load_suite(find_suite(suite_spec))
    return suite_policies(suite, policy), list(suite.claims)


def compare_cmd(
    base: Path = typer.Argument(..., help="Baseline: a run directory or a baseline .json."),
    candidate: Path = typer.Argument(..., help="Candidate run directory."),
    suite: str | None = typer.Option(
        None, help="Suite whose gate settings (min_effect per suite / case) and claims apply."
    ),
    min_effect: float | None = typer.Option(
        None, help="Smallest slowdown that counts, as a fraction (default 0.10)."
    ),
    significance: float | None = typer.Option(None, help=SIGNIFICANCE_HELP),
    alpha: float | None = OLD_ALPHA,
    allow_env_mismatch: bool = typer.Option(
        False, "--allow-env-mismatch", help="Compare speeds across environments (recorded)."
    ),
    borderline: str = typer.Option(
        "fail", help="Borderline cases that cannot be re-measured: fail or pass."
    ),
    markdown: Path | None = typer.Option(None, help="Write a pull-request comment here."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the full report as JSON."),
) -> None:
    """Compare two stored runs: counts exactly, speed with an effect size and a rank test.

    Exit codes: 0 pass, 1 regression or failed claim, 2 usage error, 3 missing or incompatible
    baseline (or a case it lacks), 4 unjudged (too few samples for a verdict).
    """
    # numpy: only judging needs them
    from hilobench.gate.judge import judge_runs
    from hilobench.gate.stored_runs import load_run

    check_choice("borderline", borderline, ("fail", "pass"))
    _check_writable_file(markdown)
    _check_writable_file(json_out)
    policies, claims = _suite_settings(suite, _policy(min_effect, significance, alpha))
    cand = load_run(candidate, role="candidate")
    try:
        base_run = load_run(base, role="base")
    except BaselineError as e:
        raise _fail(str(e), EXIT_BASELINE) from None
    report = judge_runs(
        base_run,
        cand,
        policies=policies,
        claims=claims or None,
        allow_env_mismatch=allow_env_mismatch,
        borderline_fails=borderline == "fail",
    )
    _emit(report, "hilobench compare", markdown, json_out)
    if report.refused:
        raise _fail(report.refused, EXIT_BASELINE)
    raise typer.Exit(report.exit_code)


def gate_cmd(
    base: str = typer.Option("HEAD", help="Git revision to measure against (its own code)."),
    suite: str = typer.Option("ci_smoke", help="Suite file or shipped suite name."),
    out_dir: Path | None = typer.Option(None, "--out", help="Directory for rows and reports."),
    min_effect: float | None = typer.Option(
        None, help="Smallest slowdown that counts, as a fraction (default 0.10)."
    ),
    significance: float | None = typer.Option(None, help=SIGNIFICANCE_HELP),
    alpha: float | None = OLD_ALPHA,
    budget: float | None = typer.Option(
        None,
        help="Seconds of interleaved sampling per case, both sides together (default: the "
        "suite's gate budget, else each case's own budget, 5 unless the suite sets one).",
    ),
    markdown: Path | None = typer.Option(None, help="Write a pull-request comment here."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the full report as JSON."),
    update_baseline: bool = typer.Option(
        False, "--update-baseline", help="Rewrite the suite's committed deterministic baseline."
    ),
    check_baseline: bool = typer.Option(
        False, "--check-baseline", help="Only check counts against the committed baseline."
    ),
    baseline: Path | None = typer.Option(
        None, help="Baseline file (default results/baselines/<suite>.json)."
    ),
) -> None:
    """Measure REV and the working tree interleaved on this machine, then compare them."""
    # torch (~1.5 s, the driver) and the suite loader (~25 ms)
    from hilobench.gate import driver
    from hilobench.gate.comment import verdict_markdown
    from hilobench.gate.judge import judge_runs
    from hilobench.gate.stored_runs import JudgedRun, load_run
    from hilobench.run.signals import stop_on_signals
    from hilobench.suite.loader import find_suite

    suite_path = find_suite(suite)
    _check_out_dir(out_dir)
    _check_writable_file(markdown)
    _check_writable_file(json_out)
    if budget is not None:
        check_budget(budget)
    policy = _policy(min_effect, significance, alpha)
    target = baseline or baseline_path(suite_path)
    if update_baseline and check_baseline:
        raise ConfigError("--update-baseline and --check-baseline exclude each other")
    if update_baseline:
        data = compute_baseline(suite_path)
        write_baseline(data, target)
        err.print(escape(f"wrote {len(data['cases'])} case(s) to {target}"), highlight=False)
        raise typer.Exit(EXIT_PASS)
    if check_baseline:
        try:
            base_run = load_run(target, role="base")
        except BaselineError as e:
            raise _fail(str(e), EXIT_BASELINE) from None
        rows = computed_rows(compute_baseline(suite_path))
        report = judge_runs(base_run, JudgedRun(str(suite_path), rows, {}, ""))
        _emit(report, "hilobench baseline check", markdown, json_out)
        raise typer.Exit(report.exit_code)

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = out_dir or Path("results") / "runs" / f"gate-{stamp}"
    # Ctrl-C / SIGTERM: the sides are ended and the base worktree removed on the way out
    with stop_on_signals() as stop:
        try:
            outcome = driver.run_gate(
                base,
                suite_path,
                out_dir=out,
                policy=policy,
                budget_s=budget,
                progress=lambda m: err.print(f"[dim]{escape(m)}[/dim]", highlight=False),
            )
        except GateError as e:
            raise _fail(str(e), e.exit_code) from None
        except KeyboardInterrupt:
            err.print(escape(f"interrupted: gate stopped, no verdict; logs in {out}"))
            raise typer.Exit(stop.exit_code) from None
    report = outcome.verdict
    write_text_atomic(out / "report.md", verdict_markdown(report, "hilobench gate"))
    write_text_atomic(
        out / "report.json", json.dumps(report.to_json(), indent=2, default=str) + "\n"
    )
    _emit(report, "hilobench gate", markdown, json_out)
    err.print(escape(f"rows and reports in {out}"), highlight=False)
    raise typer.Exit(report.exit_code)


def register(app: typer.Typer) -> None:
    """Attach ``compare`` and ``gate``."""
    app.command("compare")(compare_cmd)
    app.command("gate")(gate_cmd)
