"""One revision's side of a gate measurement, run inside ``python -m hilobench.run.worker``.

The gate starts one worker per revision, each in that revision's checkout and so running that
revision's own hilobench, with a ``gate`` job (:mod:`hilobench.run.worker`) listing the cases.
The two workers must never run at once (they would share the cores), so the driver hands out
turns: the worker reads one turn per line on stdin and answers on stdout when it is done.
Everything a turn does goes through the one measuring engine: counts and memory through
:func:`hilobench.run.engine.run_case`, builds through :func:`~hilobench.run.engine.build_subject`
and
:func:`~hilobench.run.engine.prepare_step`, timing through :func:`hilobench.measure.timing.time_fn`
with the block's share of the case budget as a cap. When the driver says ``end``, the
worker's rows are the job's result (``OUT.json``), as for every job.

Job: ``{"kind": "gate", "protocol": 2, "cases": [case_json, ...], "count": true}``

- worker → ``{"hello": "hilobench-gate", "protocol": 2, "version", "package", "pid", "env",
  "env_id"}`` first (``{"hello": ..., "error": message, "config": true}`` for a bad setting)
- ``{"turn": "count", "case": i}`` → ``{"status": s, "message": m}``: builds case ``i``,
  counts it and measures its memory (the row of ``run_case`` without timing)
- ``{"turn": "block", "case": i, "block": b, "budget_s": s, "cpu": c}`` → ``{"samples": n,
  "test_slowdown": f}``: builds case ``i`` afresh and times it within ``s`` seconds (on core
  ``c`` when given, else where the OS puts it)
- ``{"turn": "end"}``: the worker returns its rows, one per case in job order.

A failed turn answers ``{"error": message, "config": bool}`` and the worker lives on. A
revision whose worker does not know this job (or speaks another protocol) cannot be gated
against: exit code 3.

Test-only knob: ``HILOBENCH_TEST_SLOWDOWN="hilo=1.10"`` makes a worker pad every timed call of
the cases named ``hilo`` with a busy-wait of 10% of that call's own duration, so the gate's
detection rate can be measured against a known slowdown. The gate passes it to the
candidate's worker only, and such rows carry ``test_slowdown``.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import torch

import hilobench
from hilobench.core.case import Case
from hilobench.core.errors import ConfigError
from hilobench.measure import timing
from hilobench.measure.env import env_id, fingerprint
from hilobench.run.engine import (
    MIN_SAMPLE_S,
    base_row,
    build_subject,
    prepare_step,
    run_case,
    timing_columns,
)
from hilobench.run.jobs import GateJob, Job, job_to_json

PROTOCOL = 2
HELLO = "hilobench-gate"
SLOWDOWN_ENV = "HILOBENCH_TEST_SLOWDOWN"

#: Samples a block asks for (the budget may allow fewer: then one) and takes at most.
SAMPLES_PER_BLOCK = 2
MAX_SAMPLES_PER_BLOCK = 16

Row = dict[str, Any]


def parse_slowdown(text: str | None) -> dict[str, float]:
    """``"hilo=1.10,sra=1.2"`` → ``{"hilo": 1.1, "sra": 1.2}`` (test-only knob)."""
    out: dict[str, float] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, factor = part.partition("=")
        try:
            value = float(factor)
        except ValueError:
            value = float("nan")
        if not sep or not name.strip() or not value >= 1.0:
            raise ValueError(f"{SLOWDOWN_ENV}: expected name=factor with factor >= 1, got {part!r}")
        out[name.strip()] = value
    return out


def slowed(step: Callable[[], object], factor: float, device: str) -> Callable[[], object]:
    """``step`` padded, inside the timed region, by a busy-wait of ``factor - 1`` times its own
    duration: its time rises by that factor exactly, while the call itself runs as always."""
    cuda = device.startswith("cuda")

    def run() -> object:
        start = time.perf_counter()
        out = step()
        if cuda:
            torch.cuda.synchronize()
        until = start + (time.perf_counter() - start) * factor
        while time.perf_counter() < until:
            pass
        return out

    return run


@contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Run on core ``cpu`` (None or no affinity support: leave placement to the OS)."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def measure_block(
    case: Case, *, budget_s: float, factor: float = 1.0, cpu: int | None = None
) -> tuple[list[float], int]:
    """Build ``case`` afresh and time it within ``budget_s`` (a cap): (per-layer samples,
    calls per sample). A fresh build per block gives new parameters, inputs and buffers, so
    the builds, not the samples of one build, are what the gate's judge counts."""
    timing.set_threads(case.threads)
    subject = build_subject(case)
    step, _ = prepare_step(case, subject, {})
    if factor > 1.0:
        step = slowed(step, factor, case.device)
    try:
        with pinned(cpu):
            tm = timing.time_fn(
                step,
                device=case.device,
                budget_s=budget_s,
                min_samples=SAMPLES_PER_BLOCK,
                max_samples=MAX_SAMPLES_PER_BLOCK,
                min_warmup=1,
                min_sample_s=MIN_SAMPLE_S,
                strict_budget=True,
            )
    finally:
        if case.device.startswith("cuda"):
            torch.cuda.empty_cache()
    return timing_columns(case, subject, tm)["samples_s"], tm.calls_per_sample


def _message(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:500]


def _settle() -> None:
    """Collect the garbage now and freeze what survives out of later collections.

    ``time_fn`` collects before it samples, inside its budget; with torch loaded a full
    collection takes about 80 ms, more than a block's share of a short budget. Frozen, the
    long-lived objects (modules, tracers) are skipped and a collection takes microseconds.
    """
    gc.collect()
    gc.freeze()


class GateSide:
    """The state of one side: the job's cases and the row each has so far. While a side
    lives, objects that survive between turns are frozen out of the garbage collector."""

    def __init__(
        self,
        cases: Sequence[Mapping[str, Any]],
        *,
        count: bool = True,
        slowdown: Mapping[str, float] | None = None,
    ) -> None:
        self.cases_json = [dict(c) for c in cases]
        self.count = count
        self.slowdown = dict(slowdown or {})
        self.rows: dict[int, Row] = {}
        _settle()

    def close(self) -> None:
        gc.unfreeze()

    def hello(self) -> dict[str, Any]:
        first = self.cases_json[0] if self.cases_json else {}
        fp = fingerprint(first.get("device", "cpu"), timing.set_threads(first.get("threads")))
        return {
            "hello": HELLO,
            "protocol": PROTOCOL,
            "version": hilobench.__version__,
            "package": str(Path(hilobench.__file__).resolve().parent),
            "pid": os.getpid(),
            "env": fp,
            "env_id": env_id(fp),
        }

    def handle(self, turn: Mapping[str, Any]) -> dict[str, Any]:
        """Do one turn and return its answer; a failure is an answer, never a crash."""
        try:
            what = turn.get("turn")
            if what == "count":
                return self._count(int(turn["case"]))
            if what == "block":
                return self._block(turn)
            raise ValueError(f"unknown turn {what!r}")
        except ConfigError as e:
            return {"error": str(e), "config": True}
        except Exception as e:
            return {"error": _message(e), "config": False}

    def _case(self, i: int) -> Case:
        return Case.from_json(self.cases_json[i])

    def _count(self, i: int) -> dict[str, Any]:
        case = self._case(i)
        try:
            row = run_case(case, count=self.count, timed=False)
        except ConfigError as e:  # this revision cannot build the case
            self.rows[i] = {**base_row(case), "status": "error", "message": str(e)[:300]}
            raise
        self.rows[i] = dict(row)  # a plain dict: blocks add columns Row lacks (block_calls)
        _settle()  # the counting's first-time imports and caches stay for good
        return {"status": row.get("status"), "message": row.get("message", "")}

    def _block(self, turn: Mapping[str, Any]) -> dict[str, Any]:
        i = int(turn["case"])
        case = self._case(i)
        row = self.rows.setdefault(i, {**base_row(case), "status": "ok", "message": ""})
        name = row.get("attention") or ""
        factor = self.slowdown.get(case.name, self.slowdown.get(name, 1.0))
        _settle()  # the previous block's build goes now, outside any budget
        samples, calls = measure_block(
            case, budget_s=float(turn["budget_s"]), factor=factor, cpu=turn.get("cpu")
        )
        row.setdefault("samples_s", []).extend(samples)
        row.setdefault("sample_blocks", []).extend([int(turn["block"])] * len(samples))
        row.setdefault("block_calls", []).append(calls)
        if factor > 1.0:
            row["test_slowdown"] = factor
        return {"samples": len(samples), "test_slowdown": factor}

    def result_rows(self) -> list[Row]:
        """One row per case in job order (``not measured`` for a case no turn reached)."""
        out = []
        for i in range(len(self.cases_json)):
            row = self.rows.get(i)
            if row is None:
                try:
                    row = {**base_row(self._case(i)), "status": "error"}
                except ConfigError as e:
                    row = {"status": "error", "message": str(e)[:300]}
                row.setdefault("message", "not measured")
            out.append(row)
        return out


def _answers_stream() -> IO[str]:
    """This process's stdout for answers only; what else writes to stdout goes to stderr."""
    answers_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(answers_fd, "w", buffering=1, encoding="utf-8")


def run_side(
    job: Mapping[str, Any], stdin: IO[str] | None = None, stdout: IO[str] | None = None
) -> list[Row]:
    """The worker's ``gate`` job: hello, then turns until ``end`` (or the driver is gone);
    returns the rows. Anything the measured code prints goes to stderr, so stdout carries
    answers only."""
    answers = stdout if stdout is not None else _answers_stream()
    stdin = stdin or sys.stdin

    def send(obj: Mapping[str, Any]) -> None:
        answers.write(json.dumps(obj, default=str) + "\n")
        answers.flush()

    if job.get("protocol") != PROTOCOL:
        send({"hello": HELLO, "protocol": PROTOCOL, "error": "job of another gate protocol"})
        return []
    try:
        slowdown = parse_slowdown(os.environ.get(SLOWDOWN_ENV))
    except ValueError as e:
        send({"hello": HELLO, "protocol": PROTOCOL, "error": str(e), "config": True})
        return []
    side = GateSide(job.get("cases") or [], count=bool(job.get("count", True)), slowdown=slowdown)
    try:
        send(side.hello())
        for line in stdin:
            if not line.strip():
                continue
            turn = json.loads(line)
            if turn.get("turn") == "end":
                break
            send(side.handle(turn))
        return side.result_rows()
    finally:
        side.close()


def _run_gate_job(job: Job) -> list[dict[str, Any]]:
    if not isinstance(job, GateJob):
        raise ValueError(f"a gate side runs gate jobs only, not {type(job).__name__}")
    return [dict(r) for r in run_side(job_to_json(job))]


def main(argv: list[str] | None = None) -> int:
    """Entry point of a side process: ``python -m hilobench.gate.side_worker JOB OUT``."""
    from hilobench.run.worker import serve

    args = list(sys.argv[1:] if argv is None else argv)
    return serve(args, "hilobench.gate.side_worker", _run_gate_job)


if __name__ == "__main__":
    sys.exit(main())
