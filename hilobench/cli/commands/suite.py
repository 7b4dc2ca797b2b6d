"""``hilobench suite run|list|validate``: YAML suites on the command line. Parsing and printing
only; the work lives in hilobench.suite (loading), hilobench.run.session (the run directory
and measuring) and hilobench.cluster (other executors).

The CLI imports this module at start-up, so what loads torch or yaml is imported inside
the command that needs it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from hilobench.cli.execute import say
from hilobench.cli.flags import parse_sets
from hilobench.cli.rowtable import FORMATS, print_rows
from hilobench.core.errors import ConfigError, SuiteLimitError, check_choice
from hilobench.core.row import is_measured
from hilobench.core.terminal import console, grid, print_fitted
from hilobench.run.resume import resume_command

if TYPE_CHECKING:
    from collections.abc import Callable

    from hilobench.cluster.executor import Request
    from hilobench.store.writer import RunDir

err = Console(stderr=True)

PLUGIN_HELP = (
    "A Python file to import first (repeatable): attentions (@register_attention) and "
    "models (register_model) it registers can be named in the suite, with their knobs."
)


def _load_plugins(paths: list[Path]) -> None:
    """Import the ``--plugin`` files (``hilobench.cli.app.main`` has already, before building the
    commands; loading is idempotent). One line and exit 2, naming the file, if one fails."""
    if paths:
        from hilobench.core.plugins import load_plugin_file  # the files themselves import torch

        for path in paths:
            load_plugin_file(path)


suite_app = typer.Typer(
    no_args_is_help=True,
    help="Run, list and check YAML suites (suites/*.yaml).",
)


@suite_app.command("run")
def suite_run(
    suite: str = typer.Argument(..., help="Suite file, or the name of a shipped suite."),
    device: str | None = typer.Option(None, help="Override every case's device (cpu, cuda)."),
    out_dir: Path | None = typer.Option(
        None, "--out", help="Run directory (default: results/runs/<suite>/<timestamp>)."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Finish an interrupted run: skip the cases it measured already."
    ),
    force_resume: bool = typer.Option(
        False,
        "--force-resume",
        help="Resume even rows of another suite file or code version (mixed provenance).",
    ),
    isolate: bool = typer.Option(
        True, "--isolate/--no-isolate", help="One fresh process per case (default) or all here."
    ),
    filter_: str | None = typer.Option(
        None, "--filter", help="Only cases whose id, name or label matches (comma list, globs)."
    ),
    sets: list[str] = typer.Option(
        [], "--set", help="Override a case field for every case, e.g. --set budget=2."
    ),
    budget: float | None = typer.Option(
        None, help="Override every case's budget (s): its count trace, memory pass and timing."
    ),
    roofline: bool = typer.Option(
        True, help="Measure (once per machine, then cached) the GEMM peak for the roofline column."
    ),
    fmt: str = typer.Option("table", "--format", help="table, json, csv or md."),
    plugin: list[Path] = typer.Option([], "--plugin", metavar="FILE", help=PLUGIN_HELP),
    executor: str = typer.Option("runner", help="runner (here), local or slurm: docs/cluster.md"),
    partition: str | None = typer.Option(None, help="SLURM partitions, comma list: a run each."),
    gpus_per_node: int | None = typer.Option(None, help="GPUs per SLURM job."),
    constraint: str | None = typer.Option(None, help="SLURM --constraint, e.g. 'a100&sxm'."),
    time_limit: str | None = typer.Option(None, "--time", help="Job time limit: min or H:MM:SS."),
    array_parallelism: int | None = typer.Option(None, help="Jobs running at once (local: 1)."),
    units_per_job: int | None = typer.Option(None, help="At most this many units in a job."),
    exclusive: bool | None = typer.Option(
        None, "--exclusive/--no-exclusive", help="SLURM: whole node (default) or threads as CPUs."
    ),
) -> None:
    """Run a suite: every case in a fresh process, rows saved as they finish."""
    check_choice("format", fmt, FORMATS)
    from hilobench.cluster.launcher import EXECUTORS

    check_choice("executor", executor, EXECUTORS)
    _load_plugins(plugin)
    resume = resume or force_resume  # --force-resume is --resume without the provenance check
    overrides = parse_sets(sets)
    # torch (~1.5 s, measure.timing / capability) and the
    # suite loader with yaml (~25 ms) load only when a suite runs
    from hilobench.core.plan import plan, select
    from hilobench.measure.capability import emulation_warnings
    from hilobench.run.dircheck import mode_of
    from hilobench.run.progress import BarReporter  # rich.progress (~7 ms)
    from hilobench.run.runner import suite_hash
    from hilobench.run.session import SuiteInfo, open_session
    from hilobench.store.writer import DEFAULT_ROOT, run_dir_name
    from hilobench.suite.loader import find_suite, load_suite

    if device is not None:
        overrides["device"] = device
    if budget is not None:
        overrides["budget"] = budget
    path = find_suite(suite)
    s = load_suite(path, overrides=overrides, check_cases=True)
    chosen = select(s.cases, filter_)
    if not chosen:
        raise ConfigError(f"--filter {filter_!r} matches no case of suite {s.name!r}")
    root = DEFAULT_ROOT / run_dir_name(s.name)  # a name from the file: never a path
    digest = suite_hash(path.read_bytes()) if path.is_file() else None
    if executor != "runner":
        sched = {"partition": partition, "gpus_per_node": gpus_per_node, "time": time_limit,
                 "constraint": constraint, "array_parallelism": array_parallelism,
                 "units_per_job": units_per_job, "exclusive": exclusive}  # fmt: skip
        from hilobench.cluster.executor import Request, scheduler_args

        extra = ["--executor", executor, *scheduler_args(sched)]
        req = Request(s, chosen, executor, sched, out_dir, root, resume, force_resume, isolate,
                      roofline, digest)  # fmt: skip
        return _run_cluster(req, fmt, lambda base: resume_command(
            suite, base, device, budget, sets, filter_, isolate, plugin, extra))  # fmt: skip

    def again(target: Path) -> str:
        line = resume_command(suite, target, device, budget, sets, filter_, isolate, plugin)
        return line + (" --force-resume" if force_resume else "")

    mode = mode_of(resume=resume, force_resume=force_resume)
    first = chosen[0].case
    with open_session(
        out_dir, mode=mode, device=first.device, threads=first.threads, say=say, root=root,
        offer="--resume", suite=SuiteInfo(s.name, path, digest), again=again,
    ) as session:  # fmt: skip
        todo, regrouped = session.to_run(chosen, s.compare)
        skipped = len(chosen) - len(todo)
        say(
            f"suite {s.name}: {len(todo)} case(s) to run"
            + (f", {skipped} already done" if skipped else "")
            + f" → {session.target}"
            + ("" if isolate else " (in this process)")
        )  # the suite's name comes from its file: printed as written
        for line in [*regrouped, *emulation_warnings(sc.case for sc in todo)]:
            say(line)
        rows = session.measure(
            plan(todo, s.compare), isolate=isolate, reporter=BarReporter(err), roofline=roofline
        )
        err.print(f"finished in {session.elapsed()}", highlight=False)
        assert session.run is not None
        exit_code = _finish(session.run, rows, s.name, s.claims, fmt)
    if exit_code:
        raise typer.Exit(exit_code)


def _finish(
    run: RunDir, rows: list[dict[str, Any]], name: str, claims: list[dict[str, Any]], fmt: str
) -> int:
    """The end of a suite run: what failed, the rows, and the claims; the exit code: 4
    (EXIT_CASES_FAILED) when a case ended as ``error`` (``OOM`` is a result), else 1 when a
    claim fails, else 0."""
    from hilobench.core.errors import EXIT_CASES_FAILED

    _summarise(rows, run.path)
    print_rows(run.rows(), fmt, f"suite {name}")
    claim_failed = bool(claims) and _check_claims(run, claims)
    if any(r.get("status") == "error" for r in run.rows()):
        return EXIT_CASES_FAILED
    return 1 if claim_failed else 0


def _run_cluster(req: Request, fmt: str, again: Callable[[Path], str]) -> None:
    """``--executor local|slurm``: a run directory per machine class
    (hilobench.cluster.executor)."""
    from hilobench.cluster.executor import finish_on_cluster

    code = finish_on_cluster(
        req,
        say,
        again,
        lambda run, rows: _finish(run, rows, req.suite.name, req.suite.claims, fmt),
    )
    if code:
        raise typer.Exit(code)


def _check_claims(run: RunDir, claims: list[dict[str, Any]]) -> bool:
    """Check the suite's ratio claims on the run's rows, keep them beside the rows (so that
    `compare` checks them too) and print the verdicts; True when a claim failed."""
    # numpy: only a suite with claims needs them
    from hilobench.gate.claims import check_claims
    from hilobench.gate.comment import claims_table
    from hilobench.run.session import keep_claims

    keep_claims(run, claims)
    results = check_claims(run.rows(), claims)
    print_fitted(err, claims_table(results))
    return any(c.status == "fail" for c in results)


def _summarise(rows: list[dict[str, Any]], target: Path) -> None:
    bad: dict[str, int] = {}
    for r in rows:
        if not is_measured(r):
            bad[r.get("status", "?")] = bad.get(r.get("status", "?"), 0) + 1
    if few := sum(r.get("status") == "few-samples" for r in rows):  # measured: no failure
        err.print(
            f"{few} of {len(rows)} cases have too few samples for an interval; raise --budget"
        )
    if bad:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(bad.items()))
        err.print(f"{sum(bad.values())} of {len(rows)} cases failed ({parts}); see the rows")
    err.print(f"saved to {target}", highlight=False)


@suite_app.command("list")
def suite_list(
    directory: Path | None = typer.Option(None, "--dir", help="Where to look (default: suites/)."),
) -> None:
    """List the shipped suites: name, description and number of cases."""
    from hilobench.suite.loader import load_suite, shipped_suites  # with yaml ~25 ms

    if directory is not None and not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise ConfigError(f"--dir {str(directory)!r} {what}; give a directory of suite files")
    body = []
    for p in shipped_suites(directory):
        try:
            s = load_suite(p)
            n, groups, claims = str(len(s.cases)), str(len(s.compare)), str(len(s.claims))
            body.append([s.name, p.name, n, groups, claims, escape(s.description)])
        except SuiteLimitError:
            raise  # not a suite anyone wrote by hand: one line and exit 2, not a table row
        except ConfigError as e:
            body.append([p.stem, p.name, "-", "-", "-", f"[red]invalid:[/red] {escape(str(e))}"])
    heads = ["name", "file", "cases", "compare", "claims", "description"]
    text = [True, True, False, False, False, True]
    print_fitted(console(), grid("suites", heads, body, text, markup={5}))


@suite_app.command("validate")
def suite_validate(
    suites: list[str] = typer.Argument(..., help="Suite files or shipped suite names."),
    cases: bool = typer.Option(False, "--cases", help="Also list the expanded cases."),
    plugin: list[Path] = typer.Option([], "--plugin", metavar="FILE", help=PLUGIN_HELP),
) -> None:
    """Check suites completely (schema, names, and each case with its builder); exit 2 if not."""
    _load_plugins(plugin)
    # the suite loader with yaml (~25 ms), which loads the planner anyway
    from hilobench.core.plan import plan
    from hilobench.suite.loader import find_suite, load_suite

    for spec in suites:
        s = load_suite(find_suite(spec), check_cases=True)
        units = plan(s.cases, s.compare)
        err.print(
            f"{s.path}: ok — {len(s.cases)} cases from {s.entries} entries, "
            f"{len(s.compare)} compare group(s) in {sum(u.group is not None for u in units)} "
            f"interleaved unit(s), {len(s.claims)} claim(s)",
            highlight=False,
            soft_wrap=True,
        )
        if cases:
            body = []
            for i, sc in enumerate(s.cases, 1):
                g = s.group_of(sc.id)
                body.append([str(i), sc.id, sc.case.label(), sc.case.key, g.name if g else ""])
            heads, text = ["#", "id", "case", "key", "group"], [False, True, True, True, True]
            print_fitted(console(), grid(s.name, heads, body, text))


def register(app: typer.Typer) -> None:
    """Attach ``suite`` and its sub-commands."""
    app.add_typer(suite_app, name="suite")
