"""``suite run --executor local|slurm``: one run directory per machine class, driven to the end.

Each partition named (``--partition a100,v100,cpu``) is one machine class and gets a run
directory of its own (a sub-directory named after it when there are several), so every table
holds one hardware; ``hilobench merge`` puts them side by side. Every run directory is locked
for the launcher (:func:`hilobench.run.dircheck.hold`, as a run session holds its own), which
alone writes its ``rows.jsonl``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hilobench.cluster.launcher import POLL_S, Launcher, require_submitit
from hilobench.cluster.ledger import LEDGER, create_ledger, load_ledger
from hilobench.cluster.packing import ClusterSettings, pack, settings_from, unit_keys, unit_to_json
from hilobench.core.errors import EXIT_INCOMPLETE, ConfigError
from hilobench.core.fileio import write_bytes_atomic
from hilobench.core.plan import SuiteCase, plan
from hilobench.run.dircheck import done_keys, hold, repair_tail
from hilobench.run.signals import stop_on_signals
from hilobench.store.reader import read_bytes
from hilobench.store.writer import RunDir, check_writable, new_run_dir


@dataclass
class ClusterRun:
    """What a cluster run left: its run directories and the rows each gained this time."""

    base: Path
    runs: list[RunDir] = field(default_factory=list)
    landed: list[list[dict[str, Any]]] = field(default_factory=list)
    #: Cases left without a row because their job was stopped from outside too often.
    open_cases: int = 0


@dataclass
class Request:
    """What ``suite run`` asks of the cluster (the suite is already loaded and filtered)."""

    suite: Any  # hilobench.suite.loader.Suite
    cases: list[SuiteCase]
    executor: str
    options: dict[str, Any]
    out_dir: Path | None
    root: Path
    resume: bool
    force_resume: bool
    isolate: bool
    roofline: bool
    digest: str | None


def _latest(root: Path) -> Path:
    def is_run(p: Path) -> bool:
        return (p / LEDGER).is_file() or any((q / LEDGER).is_file() for q in p.glob("*"))

    previous = sorted(p for p in root.glob("*") if p.is_dir() and is_run(p))
    if not previous:
        raise ConfigError(f"nothing to resume: no earlier cluster run under {root}")
    return previous[-1]


def local_gpus(req: Request, settings: ClusterSettings) -> ClusterSettings:
    """Local jobs see only the GPUs they are given (submitit sets CUDA_VISIBLE_DEVICES), so
    a local run of CUDA cases gets this machine's visible GPUs unless --gpus-per-node says."""
    if req.executor != "local" or settings.gpus_per_node:
        return settings
    if not any(sc.case.device.startswith("cuda") for sc in req.cases):
        return settings
    import torch  # already loaded by `suite run`; device_count creates no CUDA context

    return replace(settings, gpus_per_node=torch.cuda.device_count())


def scheduler_args(options: dict[str, Any]) -> list[str]:
    """The scheduler options as a command line spells them (``--time=10``, ``--no-exclusive``),
    for the command that resumes a run."""
    out = []
    for key, value in options.items():
        name = key.replace("_", "-")
        if isinstance(value, bool):
            out.append(f"--{name}" if value else f"--no-{name}")
        elif value is not None:
            out.append(f"--{name}={value}")
    return out


def check_cpus(req: Request, settings: ClusterSettings) -> None:
    """Without the whole node a job asks for its cases' threads as CPUs, so each case must say
    how many it uses (or ``cpus_per_task`` must): one line naming the case otherwise."""
    if req.executor != "slurm" or settings.exclusive or settings.cpus_per_task:
        return
    for sc in req.cases:
        if sc.case.threads is None:
            raise ConfigError(
                f"--no-exclusive: case {sc.id!r} leaves its threads to the machine, so a job "
                "cannot ask for exactly its CPUs; set threads (e.g. --set threads=2) or "
                "cpus_per_task in the suite's slurm block, or keep --exclusive"
            )


def targets(req: Request, settings: ClusterSettings) -> tuple[Path, list[tuple[str | None, Path]]]:
    """The base directory and (partition, run directory) pairs of this run."""
    parts: list[str | None] = list(settings.partitions) or [None]
    if req.out_dir is not None:
        base = req.out_dir
    elif req.resume:
        base = _latest(req.root)
    else:
        base = new_run_dir(req.root)
    if len(parts) == 1:
        return base, [(parts[0], base)]
    return base, [(p, base / str(p)) for p in parts]


def _specs(req: Request, settings: ClusterSettings) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """The packed jobs' specs and case keys."""
    jobs = pack(plan(req.cases, req.suite.compare), settings)
    specs, keys = [], []
    for units in jobs:
        js = [unit_to_json(u) for u in units]
        specs.append(
            {
                "units": js,
                "isolate": req.isolate,
                "roofline": req.roofline,
                "suite": req.suite.name,
                "suite_hash": req.digest,
            }
        )
        keys.append([k for u in js for k in unit_keys(u)])
    return specs, keys


def _open(req: Request, partition: str | None, target: Path, settings: ClusterSettings,
          say: Callable[[str], None]) -> Launcher:  # fmt: skip
    run = RunDir(target)
    have = (target / LEDGER).is_file() or (run.rows_path.is_file() and bool(run.rows()))
    if have and not req.resume:
        raise ConfigError(
            f"{str(target)!r} already holds results; pass --resume to finish that run "
            "or choose another --out"
        )
    if req.resume and have:
        if not (target / LEDGER).is_file():
            raise ConfigError(f"cannot resume {str(target)!r} on a cluster: it has no {LEDGER}")
        ledger = load_ledger(target)
        if ledger.executor != req.executor:
            raise ConfigError(
                f"{str(target)!r} was run with --executor {ledger.executor}; resume it with that"
            )
        if not req.force_resume and (ledger.suite, ledger.suite_hash) != (
            req.suite.name,
            req.digest,
        ):
            raise ConfigError(
                f"cannot resume {str(target)!r}: its jobs come from another suite file "
                f"({ledger.suite} {ledger.suite_hash}); pass --force-resume to mix them"
            )
        note = repair_tail(run)
        if note:
            say(note)
    else:
        specs, keys = _specs(req, settings)
        ledger = create_ledger(
            target,
            executor=req.executor,
            partition=partition,
            suite=req.suite.name,
            suite_hash=req.digest,
            specs=specs,
            keys=keys,
        )
    path = req.suite.path
    if path is not None and path.is_file() and not (target / "suite.yaml").exists():
        write_bytes_atomic(target / "suite.yaml", read_bytes(path, "suite"))
    done = done_keys(run)
    left = sum(1 for j in ledger.jobs for k in j.keys if k not in done)
    say(
        f"suite {req.suite.name}"
        + (f" on {partition}" if partition else "")
        + f": {left} case(s) in {len(ledger.jobs)} job(s) ({req.executor}) → {target}"
    )
    return Launcher(run, ledger, settings.for_partition(partition), done, say)


def run_on_cluster(
    req: Request, say: Callable[[str], None], again: Callable[[Path], str]
) -> ClusterRun:
    """Submit (or resume) the suite's jobs on every machine class and wait for all rows.

    On Ctrl-C or SIGTERM: local jobs stop, SLURM jobs keep running, the tables are written
    and KeyboardInterrupt goes on up, after ``say`` told how to finish with ``again(base)``.
    """
    require_submitit()
    missing = [c for c in ("sbatch", "srun") if shutil.which(c) is None]
    if req.executor == "slurm" and missing:
        raise ConfigError(
            f"--executor slurm: {' and '.join(missing)} not found on PATH; run on a machine "
            "that submits SLURM jobs, or use --executor local"
        )
    settings = local_gpus(req, settings_from(req.suite.slurm, req.options))
    check_cpus(req, settings)
    base, pairs = targets(req, settings)
    for _, t in pairs:
        check_writable(t)
    out = ClusterRun(base)
    with ExitStack() as stack:
        launchers = []
        for partition, t in pairs:
            stack.enter_context(hold(t, say))
            launchers.append(_open(req, partition, t, settings, say))
        poll = POLL_S["local" if req.executor == "local" else "slurm"]
        try:
            while True:
                busy = [la.step() for la in launchers]
                if not any(busy):
                    break
                time.sleep(poll)
        except KeyboardInterrupt:
            for la in launchers:
                la.stop()
                la.run.write_tables()
            kept = "stopped" if req.executor == "local" else "keep running"
            say(f"interrupted: rows so far are saved, the jobs {kept}; finish with `{again(base)}`")
            raise
        for la in launchers:
            for note in la.notes:
                say(note)
            la.run.write_tables()
            out.runs.append(la.run)
            out.landed.append(la.landed)
            out.open_cases += la.open_cases
    if out.open_cases:
        say(f"{out.open_cases} case(s) left open; finish with `{again(base)}`")
    return out


def finish_on_cluster(
    req: Request,
    say: Callable[[str], None],
    again: Callable[[Path], str],
    finish: Callable[[RunDir, list[dict[str, Any]]], int],
) -> int:
    """Run :func:`run_on_cluster` under the stop signals and ``finish`` each run directory;
    the exit code: 130/143 when stopped, :data:`~hilobench.core.errors.EXIT_INCOMPLETE` when cases
    were left open, else the worst of ``finish``'s codes."""
    with stop_on_signals() as stop:
        try:
            done = run_on_cluster(req, say, again)
        except KeyboardInterrupt:
            return stop.exit_code
    codes = [finish(run, rows) for run, rows in zip(done.runs, done.landed, strict=True)]
    return EXIT_INCOMPLETE if done.open_cases else max(codes, default=0)
