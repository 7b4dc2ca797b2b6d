"""``hilobench suite run|list|validate``: YAML suites on the command line. Parsing and printing
only; the work lives in suite.py (loading), runner.py (measuring) and store.py (the rows).

The CLI imports this module at start-up, so what loads torch or yaml is imported inside
the command that needs it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from hilobench.cli.flags import parse_sets
from hilobench.cli.rowtable import FORMATS, print_rows
from hilobench.core.errors import ConfigError, SuiteLimitError, check_choice
from hilobench.core.fileio import write_text_atomic
from hilobench.core.row import is_measured
from hilobench.core.terminal import console, grid, print_fitted
from hilobench.run.lock import RunLock, describe
from hilobench.run.resume import hint_on_stop, resume_command

if TYPE_CHECKING:
    from collections.abc import Callable

    from hilobench.cluster.executor import Request
    from hilobench.core.plan import Unit
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
        False, "--resume", help="Finish an interrupted run: skip cases already in rows.jsonl."
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
    from hilobench.core.fileio import write_bytes_atomic
    from hilobench.core.plan import plan, select, still_to_run
    from hilobench.measure.capability import emulation_warnings
    from hilobench.measure.env import (
        class_differences,
        code_state,
        env_id,
        fingerprint,
        machine_class,
    )
    from hilobench.measure.timing import set_threads
    from hilobench.run.runner import done_keys, provenance_differences, repair_tail, suite_hash
    from hilobench.store.reader import read_bytes
    from hilobench.store.writer import (
        DEFAULT_ROOT,
        RunDir,
        check_writable,
        new_run_dir,
        run_dir_name,
    )
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
    if out_dir is None and resume and executor == "runner":
        previous = sorted(p for p in root.glob("*") if (p / "rows.jsonl").is_file())
        if not previous:
            raise ConfigError(f"nothing to resume: no earlier run of {s.name!r} under {root}")
        out_dir = previous[-1]
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
    target = check_writable(out_dir if out_dir is not None else new_run_dir(root))
    again = resume_command(suite, target, device, budget, sets, filter_, isolate, plugin)
    again += " --force-resume" if force_resume else ""
    with hint_on_stop(again), RunLock(target) as lock:  # one writer per run directory
        if lock.took_over is not None:
            err.print(
                f"note: {target} was left locked by a run that is gone "
                f"({describe(lock.took_over)}); taking it over",
                highlight=False,
                soft_wrap=True,
            )
        run = RunDir(target)
        # a row torn by a kill goes first: a run killed while writing its first row resumes
        # from scratch instead of being refused for holding no complete row
        repaired = repair_tail(run) if resume else None
        have = run.rows_path.is_file() and bool(run.rows())
        if have and not resume:
            raise ConfigError(
                f"{str(target)!r} already holds results; pass --resume to finish that run "
                "or choose another --out"
            )

        env = fingerprint(chosen[0].case.device, set_threads(chosen[0].case.threads))
        eid = env_id(env)
        old_env = run.env() if have else {}
        # the same machine type may resume (a kernel update or a RAM figure that moved by a few
        # KB does not change speeds); another CPU, GPU or torch may not
        diffs = class_differences(machine_class(old_env), machine_class(env)) if old_env else []
        if diffs:
            why = "; ".join(diffs[:3])
            raise ConfigError(f"cannot resume {str(target)!r} here: another machine class ({why})")
        if have and not force_resume:
            # rows of another suite file or another code version would mix unseen
            code = code_state(exclude=[target])
            diffs = provenance_differences(run.rows(), s.name, digest, code)
            if diffs:
                raise ConfigError(
                    f"cannot resume {str(target)!r}: its rows come from another suite or code "
                    f"version ({'; '.join(diffs[:3])}); pass --force-resume to mix them"
                )

        done = done_keys(run) if resume else set()
        todo, regrouped = still_to_run(chosen, s.compare, done)
        run.create({**env, "env_id": eid})
        if path.is_file() and not (target / "suite.yaml").exists():
            write_bytes_atomic(target / "suite.yaml", read_bytes(path, "suite"))
        if repaired:
            err.print(repaired, markup=False, highlight=False, soft_wrap=True)
        skipped = len(chosen) - len(todo)
        err.print(
            f"suite {s.name}: {len(todo)} case(s) to run"
            + (f", {skipped} already done" if skipped else "")
            + f" → {target}"
            + ("" if isolate else " (in this process)"),
            markup=False,  # the suite's name comes from its file
            highlight=False,
        )
        keys = {sc.row_key for sc in chosen}
        for line in [*regrouped, *emulation_warnings(sc.case for sc in todo)]:
            err.print(line, markup=False, highlight=False, soft_wrap=True)
        units = plan(todo, s.compare)
        rows = _run(run, units, eid, isolate, s.name, keys, again, roofline, digest)
        run.write_tables()
        exit_code = _finish(run, rows, s.name, s.claims, fmt)
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
        lambda line: err.print(line, markup=False, highlight=False, soft_wrap=True),
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

    write_text_atomic(run.path / "claims.json", json.dumps(claims, indent=2) + "\n")
    results = check_claims(run.rows(), claims)
    print_fitted(err, claims_table(results))
    return any(c.status == "fail" for c in results)


def _run(
    run: RunDir,
    units: list[Unit],
    eid: str,
    isolate: bool,
    name: str,
    keys: set[str],
    again: str,
    roofline: bool = True,
    digest: str | None = None,
) -> list[dict[str, Any]]:
    """Measure ``units``; on Ctrl-C or SIGTERM end the worker, keep every finished row, write
    the tables for them and exit 130 (143 for SIGTERM) with the command that finishes the run."""
    from hilobench.run.maxbatch import search_suite_case  # light: no torch until a search runs
    from hilobench.run.progress import BarReporter  # rich.progress (~7 ms)
    from hilobench.run.runner import Runner, done_keys, elapsed, stop_on_signals

    runner = Runner(
        run,
        env_id=eid,
        isolate=isolate,
        reporter=BarReporter(err),
        suite=name,
        suite_hash=digest,
        roofline=roofline,
        searcher=search_suite_case,
    )
    t0 = time.perf_counter()
    with stop_on_signals() as stop:
        try:
            runner.run_units(units)
        except KeyboardInterrupt:
            run.write_tables()
            have = len(done_keys(run) & keys)
            rows = run.rows() if run.rows_path.is_file() else []
            part = [r for r in rows if r.get("status") == "partial" and r["case_key"] in keys]
            kept = (
                f", {len(part)} partial ({part[0].get('n_samples')} round(s) kept)" if part else ""
            )
            err.print(
                f"interrupted after {elapsed(t0)}: {have} of {len(keys)} cases measured{kept}, "
                f"rows in {run.path}; finish with `{again}`",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(stop.exit_code) from None
    err.print(f"finished in {elapsed(t0)}", highlight=False)
    return runner.rows


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
