"""The speed gate: measure a base revision and the working tree interleaved, in one job.

Numbers measured on another machine or an hour ago carry that machine's and that hour's
noise, so the gate never uses stored timings. It checks REV out into a temporary git
worktree and starts two long-lived worker processes, one running REV's own hilobench code and
one running the working tree's, both on this Python and these libraries. For each case the
gate asks them for samples in turn, in blocks: each block builds the case afresh on both
sides and takes a few rounds of one sample per side (see :func:`measure_case`), so drift hits
both sides alike and builds, not samples, are the independent units. Then
:mod:`hilobench.compare` judges the rows; borderline cases are measured again, afresh.

Worker protocol (``python -m hilobench.gate --serve``), one JSON object per line:

- worker → ``{"hello": "hilobench-gate", "protocol": 1, "version": ..., "package": ...}``
- ``{"op": "env", "device": d, "threads": n}`` → ``{"env": fingerprint, "env_id": id}``
- ``{"op": "setup", "case": case_json, "key": k, "count": bool, "light": bool}`` →
  ``{"row": row, "call_s": s}``: builds the case under ``k``; unless ``light``, also counts
  it and measures its memory (the row of :func:`hilobench.bench.run_case` without timing)
- ``{"op": "sample", "key": k, "calls": c, "cpus": [i]}`` → ``{"sample_s": per-call seconds,
  "page_faults": n}`` (``cpus``, optional: the cores to run on)
- ``{"op": "release", "key": k}`` → ``{}``;  ``{"op": "quit"}`` ends the worker.

Errors come back as ``{"error": message, "config": bool}``. A revision without this module
(or with another protocol number) cannot be gated against: that is exit code 3.

Test-only knob: ``HILOBENCH_TEST_SLOWDOWN="hilo=1.10"`` makes a worker pad every timed sample of
the cases named ``hilo`` with a busy-wait of 10% of that sample's own measured duration, so
the gate's detection rate can be measured against a known slowdown. The gate passes it to the
candidate worker only; it never changes a row written outside such a measurement.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from hilobench.measure import procenv

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]

PROTOCOL = 1
HELLO = "hilobench-gate"
SLOWDOWN_ENV = "HILOBENCH_TEST_SLOWDOWN"

#: Default seconds of interleaved sampling per case (both sides together).
DEFAULT_BUDGET_S = 5.0
#: Blocks (fresh builds of the case on both sides) before the budget may end sampling, the
#: cap, and the rounds (one sample per side each) taken from each build.
MIN_BLOCKS = 15
MAX_BLOCKS = 200
ROUNDS_PER_BLOCK = 2
#: A sample repeats short calls until it lasts this long (timer noise, scheduler ticks).
MIN_SAMPLE_S = 0.02
#: Warm-up rounds run until both sides made this many calls and spent this many seconds.
WARMUP_CALLS = 3
WARMUP_S = 0.3
HELLO_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 1800.0


class GateError(Exception):
    """A side cannot be measured: the base (unknown revision, too old, not a checkout: exit
    3) or the candidate (its code does not start: exit 1)."""

    def __init__(self, message: str, side: str = "base"):
        super().__init__(message)
        self.role = side


class WorkerError(RuntimeError):
    """A worker answered a request with an error."""

    def __init__(self, message: str, config: bool = False):
        super().__init__(message)
        self.config = config


# --------------------------------------------------------------------------------------------
# Worker side
# --------------------------------------------------------------------------------------------


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


def deterministic_row(case: Any, *, count: bool = True, env_id: str = "") -> dict[str, Any]:
    """The row of ``case`` without timing: identity, counts and memory, exactly as the suite
    runner measures them (:func:`hilobench.bench.run_case` with ``timed=False``).

    This is what the committed baseline holds and what the gate's workers report."""
    from hilobench.bench import run_case

    return run_case(case, env_id=env_id, count=count, timed=False)


def _prepare(case: Any, row: dict[str, Any], subject: Any = None) -> Callable[[], Any]:
    """Build ``case`` afresh and return the step that is timed (as the suite runner does)."""
    from hilobench.bench import build_subject, prepare_step
    from hilobench.measure import timing

    timing.set_threads(case.threads)
    step, _ = prepare_step(case, subject or build_subject(case), dict(row))
    return step


@dataclass
class _Prepared:
    step: Callable[[], Any]
    sync: Callable[[], None]
    per_call: int  # layers per call: samples are per layer, as in run_case
    factor: float


class _Server:
    """Answers protocol requests; keeps prepared cases alive between samples."""

    def __init__(self) -> None:
        self.cases: dict[str, _Prepared] = {}
        self.slowdown = parse_slowdown(os.environ.get(SLOWDOWN_ENV))

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "env":
            from hilobench.measure.env import env_id, fingerprint
            from hilobench.measure.timing import set_threads

            fp = fingerprint(req.get("device", "cpu"), set_threads(req.get("threads")))
            return {"env": fp, "env_id": env_id(fp)}
        if op == "setup":
            return self.setup(req)
        if op == "sample":
            if req.get("cpus") and hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(0, req["cpus"])
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0
            value = self.sample(req["key"], int(req.get("calls", 1)))
            if resource:
                faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
            return {"sample_s": value, "page_faults": faults}
        if op == "release":
            self.cases.pop(req["key"], None)
            return {}
        raise ValueError(f"unknown op {op!r}")

    def setup(self, req: dict[str, Any]) -> dict[str, Any]:
        import torch

        from hilobench.case import Case

        case = Case.from_json(req["case"])
        key = req.get("key") or case.key
        self.cases.pop(key, None)
        if not req.get("light"):
            gc.collect()
        if req.get("light"):  # a fresh build only: counts and memory are known already
            from hilobench.bench import base_row, build_subject

            subject = build_subject(case)
            row = {**base_row(case), "status": "ok", "layers_per_call": subject.layers_per_call}
            step = _prepare(case, row, subject)
        else:
            row = deterministic_row(case, count=bool(req.get("count", True)))
            if row.get("status") != "ok":
                return {"row": row, "call_s": None}
            step = _prepare(case, row)
        dev = torch.device(case.device)
        sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
        factor = self.slowdown.get(case.name, self.slowdown.get(row.get("attention", ""), 1.0))
        prepared = _Prepared(step, sync, int(row.get("layers_per_call") or 1), factor)
        self.cases[key] = prepared
        return {"row": row, "call_s": self._timed(prepared, 1), "test_slowdown": factor}

    def sample(self, key: str, calls: int) -> float:
        return self._timed(self.cases[key], calls) / self.cases[key].per_call

    @staticmethod
    def _timed(p: _Prepared, calls: int) -> float:
        """Seconds per call over ``calls`` calls (garbage collector paused, as time_fn does).

        With the test knob the sample is padded, inside the timed region, by a busy-wait of
        ``factor - 1`` times its own measured duration: the time rises by that factor
        exactly, while the calls themselves run as they always do."""
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            p.sync()
            start = time.perf_counter()
            for _ in range(calls):
                p.step()
            p.sync()
            if p.factor > 1.0:
                until = start + (time.perf_counter() - start) * p.factor
                while time.perf_counter() < until:
                    pass
            total = time.perf_counter() - start
        finally:
            if gc_was_enabled:
                gc.enable()
        return total / calls


def serve(stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> None:
    """Run the worker loop. Anything the measured code prints goes to stderr, so stdout
    carries protocol lines only."""
    import hilobench

    if stdout is None:
        proto_fd = os.dup(1)
        os.dup2(2, 1)
        stdout = os.fdopen(proto_fd, "w", buffering=1, encoding="utf-8")
        sys.stdout = sys.stderr
    stdin = stdin or sys.stdin

    def send(obj: dict[str, Any]) -> None:
        stdout.write(json.dumps(obj, default=str) + "\n")
        stdout.flush()

    try:
        server = _Server()
    except ValueError as e:
        send({"hello": HELLO, "protocol": PROTOCOL, "error": str(e), "config": True})
        return
    send(
        {
            "hello": HELLO,
            "protocol": PROTOCOL,
            "version": hilobench.__version__,
            "package": str(Path(hilobench.__file__).resolve().parent),
            "pid": os.getpid(),
        }
    )
    from hilobench.errors import ConfigError

    for line in stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            if req.get("op") == "quit":
                send({})
                return
            send(server.handle(req))
        except ConfigError as e:
            send({"error": str(e), "config": True})
        except Exception as e:  # a failure is an answer, the worker lives on
            msg = str(e).strip().splitlines()
            send({"error": f"{type(e).__name__}: {msg[0] if msg else ''}"[:500]})


# --------------------------------------------------------------------------------------------
# Gate side
# --------------------------------------------------------------------------------------------


class Worker:
    """A persistent measuring process running the hilobench code found in ``root``."""

    def __init__(
        self,
        root: Path,
        role: str,
        *,
        side: str = "base",
        log: Path | None = None,
        slowdown: str | None = None,
        python: str | None = None,
    ):
        self.root = Path(root).resolve()
        self.role = role
        self.side = side
        self.log_path = log
        env = dict(os.environ)
        env.pop(SLOWDOWN_ENV, None)
        if slowdown:
            env[SLOWDOWN_ENV] = slowdown
        env["PYTHONPATH"] = str(self.root) + (
            os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
        )
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env = procenv.worker_env(env)
        self._log = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [python or sys.executable, "-m", "hilobench.gate", "--serve"],
            cwd=self.root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self._buf = b""
        self.hello = self._hello()

    def _hello(self) -> dict[str, Any]:
        try:
            hello = self._read(HELLO_TIMEOUT_S)
        except (EOFError, TimeoutError, json.JSONDecodeError):
            self.close()
            raise GateError(
                f"the {self.role} code at {self.root} does not run a hilobench gate worker "
                f"(protocol {PROTOCOL}): revision too old, or not a hilobench checkout"
                + self._log_tail(),
                self.side,
            ) from None
        if hello.get("hello") != HELLO or hello.get("protocol") != PROTOCOL:
            self.close()
            raise GateError(
                f"the {self.role} code speaks gate protocol {hello.get('protocol')!r}, this "
                f"hilobench speaks {PROTOCOL}: compare revisions with the same protocol",
                self.side,
            )
        if hello.get("error"):
            self.close()
            from hilobench.errors import ConfigError

            raise ConfigError(str(hello["error"]))
        pkg = Path(str(hello.get("package", ""))).resolve()
        if pkg != self.root / "hilobench":
            self.close()
            raise GateError(
                f"the {self.role} worker imported hilobench from {pkg}, not from {self.root}: "
                "refusing to measure the wrong code",
                self.side,
            )
        return hello

    def _log_tail(self) -> str:
        if not self.log_path or not Path(self.log_path).exists():
            return ""
        lines = Path(self.log_path).read_text(errors="replace").strip().splitlines()
        return f" ({lines[-1].strip()})" if lines else ""

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.role} worker did not answer in {timeout:.0f} s")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise EOFError(f"{self.role} worker exited")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return json.loads(line)

    def send(self, req: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(req, default=str) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise WorkerError(f"{self.role} worker exited{self._log_tail()}") from None

    def receive(self, timeout: float = REQUEST_TIMEOUT_S) -> dict[str, Any]:
        try:
            ans = self._read(timeout)
        except EOFError:
            raise WorkerError(f"{self.role} worker exited{self._log_tail()}") from None
        if "error" in ans:
            raise WorkerError(str(ans["error"]), config=bool(ans.get("config")))
        return ans

    def request(self, req: dict[str, Any], timeout: float = REQUEST_TIMEOUT_S) -> dict[str, Any]:
        self.send(req)
        return self.receive(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send({"op": "quit"})
                self.proc.wait(timeout=10)
            except (WorkerError, subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()
        if self._log is not subprocess.DEVNULL:
            self._log.close()


@dataclass
class SideResult:
    """What one side of one case produced."""

    row: dict[str, Any] | None = None
    samples: list[float] = field(default_factory=list)
    error: str | None = None
    config_error: bool = False


def _setup_both(
    workers: dict[str, Worker], case: Any, key: str, *, count: bool, light: bool
) -> dict[str, SideResult]:
    """Build the case on both workers at once (nothing is timed while they do)."""
    req = {"op": "setup", "case": case.to_json(), "key": key, "count": count, "light": light}
    for w in workers.values():
        w.send(req)
    out: dict[str, SideResult] = {}
    for side, w in workers.items():
        try:
            ans = w.receive()
            out[side] = SideResult(row=ans["row"])
            if ans.get("call_s") is None:
                out[side].error = ans["row"].get("message") or ans["row"].get("status")
        except WorkerError as e:
            out[side] = SideResult(error=str(e), config_error=e.config)
    return out


def _release(workers: dict[str, Worker], key: str) -> None:
    for w in workers.values():
        try:
            w.request({"op": "release", "key": key}, timeout=60)
        except (WorkerError, TimeoutError, EOFError):
            pass


def _single_thread_cpus(results: dict[str, SideResult]) -> list[int]:
    """CPUs to rotate a single-threaded case over (empty: leave placement to the OS).

    Each core of a shared or virtual machine has its own neighbours, so a process that the
    scheduler keeps on one core can run a few percent slower or faster than one kept on the
    other, for as long as it lives. Running both sides on the same core in each block, and
    moving to the next core with the next block, gives both sides every core alike.
    """
    threads = {(r.row or {}).get("threads") for r in results.values()}
    if threads != {1} or not hasattr(os, "sched_getaffinity"):
        return []
    cpus = sorted(os.sched_getaffinity(0))
    return cpus if len(cpus) > 1 else []


def measure_case(
    workers: dict[str, Worker],
    case: Any,
    *,
    key: str | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    min_blocks: int = MIN_BLOCKS,
    rounds_per_block: int = ROUNDS_PER_BLOCK,
    count: bool = True,
) -> dict[str, SideResult]:
    """Interleaved samples of one case on both workers (``{"base": ..., "candidate": ...}``).

    Samples come in blocks. Each block builds the case afresh on both sides (new parameters,
    inputs and buffers), discards one warm-up sample per side, then takes
    ``rounds_per_block`` rounds of one sample per side in strict alternation, so every sample
    follows one of the other side; the side that starts alternates from block to block.
    Why: two builds of identical code can differ by a few percent for as long as they live
    (memory placement), more than the samples of one build differ, so only many builds make
    two sides comparable; and a sample that follows its own side runs on warmer caches.
    Blocks go on until ``budget_s`` is spent and ``min_blocks`` are done. The first block
    also counts the case (counts and memory: the deterministic row) on both sides.
    """
    key = key or case.key
    sides = list(workers)
    results = _setup_both(workers, case, key, count=count, light=False)
    if any(r.error for r in results.values()):
        _release(workers, key)
        return results
    try:
        # size the samples: single calls, alternating, until warm
        one = {"op": "sample", "key": key, "calls": 1}
        times: dict[str, list[float]] = {side: [] for side in sides}
        t0 = time.perf_counter()
        while len(times[sides[0]]) < WARMUP_CALLS or time.perf_counter() - t0 < WARMUP_S:
            for side in sides:
                times[side].append(float(workers[side].request(one)["sample_s"]))
        per_call = min(_median(t[-WARMUP_CALLS:]) for t in times.values()) * per_layer(results)
        calls = max(1, math.ceil(MIN_SAMPLE_S / max(per_call, 1e-9)))
        cpus = _single_thread_cpus(results)
        blocks: list[int] = []
        start = time.perf_counter()
        block = 0
        while block < MAX_BLOCKS:
            bkey = key if block == 0 else f"{key}#{block}"
            if block > 0:
                fresh = _setup_both(workers, case, bkey, count=False, light=True)
                bad = [r.error for r in fresh.values() if r.error]
                if bad:
                    raise WorkerError(str(bad[0]))
            sample: dict[str, Any] = {"op": "sample", "key": bkey, "calls": calls}
            if cpus:  # both sides on the same core in a block, the next core in the next
                sample["cpus"] = [cpus[block % len(cpus)]]
            # Strict alternation, so every sample follows one of the other side (a side
            # never runs on caches it warmed itself); who starts alternates with the block.
            order = sides if block % 2 == 0 else sides[::-1]
            for side in order:  # the first calls of a fresh build fill the allocator's cache
                workers[side].request(sample)
            for _ in range(rounds_per_block):
                for side in order:
                    value = float(workers[side].request(sample)["sample_s"])
                    results[side].samples.append(value)
                blocks.append(block)
            _release(workers, bkey)
            block += 1
            if block >= min_blocks and time.perf_counter() - start >= budget_s:
                break
        for side in sides:
            row = results[side].row or {}
            row.update(calls_per_sample=calls, sample_blocks=blocks, blocks=block)
    except WorkerError as e:
        for w in workers.values():
            if w.proc.poll() is not None:
                raise GateError(f"the {w.role} worker died: {e}", w.side) from None
        for r in results.values():
            r.error = r.error or str(e)
        _release(workers, key)
    return results


def _median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else 0.5 * (s[m - 1] + s[m])


def per_layer(results: dict[str, SideResult]) -> int:
    """Layers per call of a case (samples are per layer; sizing needs whole calls)."""
    for r in results.values():
        if r.row and r.row.get("layers_per_call"):
            return int(r.row["layers_per_call"])
    return 1


def finish_row(side: SideResult, case: Any, *, round_group: str, env_id: str) -> dict[str, Any]:
    """A complete row (schema as run_case writes it) from one side's measurement."""
    from hilobench.bench import base_row
    from hilobench.measure import stats

    row = dict(side.row) if side.row else base_row(case)
    row["case_key"] = case.key
    row["env_id"] = env_id
    row["round_group"] = round_group
    if side.error:
        if row.get("status", "ok") == "ok":
            row["status"] = "error"
            row["message"] = side.error[:300]
        return row
    row["samples_s"] = side.samples
    if side.samples:
        row.update(stats.summarize(side.samples, case.batch))
    return row


# --------------------------------------------------------------------------------------------
# Revisions
# --------------------------------------------------------------------------------------------


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=check, timeout=120
    )


def repo_root(path: Path | str = ".") -> Path:
    """Top of the git checkout holding ``path``; GateError when there is none."""
    try:
        top = _git(Path(path), "rev-parse", "--show-toplevel").stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise GateError(f"{Path(path).resolve()} is not inside a git checkout") from None
    return Path(top).resolve()


@contextmanager
def checkout(repo: Path, rev: str) -> Iterator[tuple[Path, str]]:
    """REV checked out into a temporary git worktree; removed again on exit."""
    try:
        commit = _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").stdout
    except subprocess.CalledProcessError:
        raise GateError(f"unknown revision {rev!r} in {repo}") from None
    commit = commit.strip()
    tmp = Path(tempfile.mkdtemp(prefix="hilobench-gate-base-"))
    path = tmp / "base"
    try:
        _git(repo, "worktree", "add", "--detach", "--quiet", str(path), commit)
    except subprocess.CalledProcessError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise GateError(f"cannot check out {rev!r}: {e.stderr.strip()}") from None
    try:
        if not (path / "hilobench" / "gate.py").is_file():
            raise GateError(
                f"revision {rev!r} ({commit[:12]}) has no hilobench/gate.py: too old for the "
                "gate, or not a hilobench checkout"
            )
        yield path, commit
    finally:
        _git(repo, "worktree", "remove", "--force", str(path), check=False)
        shutil.rmtree(tmp, ignore_errors=True)
        _git(repo, "worktree", "prune", check=False)


# --------------------------------------------------------------------------------------------
# The whole gate
# --------------------------------------------------------------------------------------------


@dataclass
class GateCase:
    """A case to gate, with its suite id and its speed policy."""

    case: Any
    id: str
    policy: Any


@dataclass
class GateOutcome:
    report: Any
    out_dir: Path
    wall_s: float
    base_commit: str = ""


def _env_of(worker: Worker, device: str, threads: int | None) -> tuple[dict[str, Any], str]:
    ans = worker.request({"op": "env", "device": device, "threads": threads})
    return ans["env"], ans["env_id"]


def run_pair(
    workers: dict[str, Worker],
    cases: Sequence[GateCase],
    *,
    budget_s: float = DEFAULT_BUDGET_S,
    claims: Sequence[dict[str, Any]] = (),
    out_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    base_label: str = "base",
    cand_label: str = "candidate",
) -> Any:
    """Measure every case on both workers, interleaved, then judge them (re-measuring
    borderline cases afresh on the same workers). Returns a :class:`compare.Report`."""
    from hilobench import compare
    from hilobench.store import RunDir

    first = cases[0].case if cases else None
    envs = {
        side: _env_of(w, first.device if first else "cpu", first.threads if first else None)
        for side, w in workers.items()
    }
    group = uuid.uuid4().hex[:12]
    rows: dict[str, dict[str, dict[str, Any]]] = {"base": {}, "candidate": {}}
    by_key = {gc_.case.key: gc_ for gc_ in cases}
    for i, gc_ in enumerate(cases, 1):
        if progress:
            progress(f"[{i}/{len(cases)}] {gc_.case.label()}")
        res = measure_case(workers, gc_.case, budget_s=budget_s)
        for side in ("base", "candidate"):
            row = finish_row(res[side], gc_.case, round_group=f"{group}:{i}", env_id=envs[side][1])
            row["case_id"] = gc_.id
            if side == "base" and res[side].config_error:
                row["status"] = "missing"  # the base code cannot build this case
            rows[side][gc_.case.key] = row

    def remeasure(key: str) -> compare.Timings | None:
        gc_ = by_key[key]
        if progress:
            progress(f"re-measuring borderline {gc_.case.label()}")
        res = measure_case(workers, gc_.case, key=f"{key}-again", budget_s=budget_s, count=False)
        if res["base"].error or res["candidate"].error:
            return None
        blocks = (res["base"].row or {}).get("sample_blocks")
        for side in ("base", "candidate"):
            rows[side][key]["remeasure_samples_s"] = res[side].samples
            rows[side][key]["remeasure_sample_blocks"] = blocks
        return compare.Timings(res["base"].samples, res["candidate"].samples, True, blocks)

    base_rows = {k: r for k, r in rows["base"].items() if r.get("status") != "missing"}
    base_run = compare.Run(base_label, base_rows, envs["base"][0], envs["base"][1])
    cand_run = compare.Run(
        cand_label, rows["candidate"], envs["candidate"][0], envs["candidate"][1]
    )
    policies = compare.Policies(
        cases[0].policy if cases else compare.SpeedPolicy(),
        {gc_.case.key: gc_.policy for gc_ in cases},
    )
    report = compare.compare_runs(
        base_run,
        cand_run,
        policies=policies,
        claims=list(claims),
        remeasure=remeasure,
        same_job=True,
    )
    if out_dir is not None:
        kept = {"base": base_rows, "candidate": rows["candidate"]}
        for side in ("base", "candidate"):
            run = RunDir(out_dir / side).create({**envs[side][0], "env_id": envs[side][1]})
            for row in kept[side].values():
                run.append(row)
            run.write_tables()
        if claims:
            (out_dir / "candidate" / "claims.json").write_text(json.dumps(list(claims)) + "\n")
    return report


def gate_cases(suite: Any, default_policy: Any) -> list[GateCase]:
    """Cases of a loaded suite with their speed policies (suite ``gate:`` settings, then the
    case's own ``min_effect`` where the suite offers one)."""
    policy = default_policy.with_overrides(getattr(suite, "gate", None))
    out = []
    for sc in suite.cases:
        own = getattr(sc, "gate", None) or {}
        if getattr(sc, "min_effect", None) is not None:
            own = {**own, "min_effect": sc.min_effect}
        out.append(GateCase(sc.case, sc.id, policy.with_overrides(own)))
    return out


def run_gate(
    base_rev: str,
    suite_path: Path | str,
    *,
    out_dir: Path,
    policy: Any = None,
    budget_s: float | None = None,
    repo: Path | str = ".",
    progress: Callable[[str], None] | None = None,
) -> GateOutcome:
    """Check out ``base_rev``, start a worker on it and one on the working tree, measure the
    suite interleaved and compare. Raises GateError when the base cannot be measured."""
    from hilobench import compare
    from hilobench.suite import load_suite

    t0 = time.perf_counter()
    suite = load_suite(suite_path)
    cases = gate_cases(suite, policy or compare.SpeedPolicy())
    settings = getattr(suite, "gate", None) or {}
    budget = budget_s if budget_s is not None else float(settings.get("budget", DEFAULT_BUDGET_S))
    root = repo_root(repo)
    with checkout(root, base_rev) as (base_path, commit):
        out_dir.mkdir(parents=True, exist_ok=True)
        if progress:
            progress(f"base {base_rev} = {commit[:12]}; candidate = working tree {root}")
        workers: dict[str, Worker] = {}
        try:
            workers["base"] = Worker(base_path, f"base ({base_rev})", log=out_dir / "base.log")
            workers["candidate"] = Worker(
                root,
                "candidate",
                side="candidate",
                log=out_dir / "candidate.log",
                slowdown=os.environ.get(SLOWDOWN_ENV),
            )
            report = run_pair(
                workers,
                cases,
                budget_s=budget,
                claims=suite.claims,
                out_dir=out_dir,
                progress=progress,
                base_label=f"{base_rev} ({commit[:12]})",
                cand_label="working tree",
            )
        finally:
            for w in workers.values():
                w.close()
    wall = time.perf_counter() - t0
    report.notes.append(
        f"measured interleaved in one job on this machine; {len(cases)} case(s), "
        f"{budget:g} s of sampling each, gate wall time {wall:.0f} s"
    )
    return GateOutcome(report, out_dir, wall, commit)


# --------------------------------------------------------------------------------------------
# Committed deterministic baseline
# --------------------------------------------------------------------------------------------

BASELINE_FIELDS = ("params", "macs", "macs_traced", "peak_mem_bytes")


def baseline_path(suite_path: Path | str, root: Path | str = ".") -> Path:
    """Where a suite's committed baseline lives: ``results/baselines/<suite stem>.json``."""
    return Path(root) / "results" / "baselines" / f"{Path(suite_path).stem}.json"


def compute_baseline(suite_path: Path | str) -> dict[str, Any]:
    """Deterministic figures of every case of a suite (no timing), as committed."""
    import torch

    from hilobench.compare import BASELINE_KIND, BASELINE_SCHEMA
    from hilobench.suite import load_suite

    suite = load_suite(suite_path)
    cases: dict[str, Any] = {}
    for sc in suite.cases:
        row = deterministic_row(sc.case, count=sc.count)
        figures = {k: row.get(k) for k in BASELINE_FIELDS if row.get(k) is not None}
        if sc.case.device.startswith("cuda"):
            figures.pop("peak_mem_bytes", None)
        cases[sc.case.key] = {"id": sc.id, "label": sc.case.label(), **figures}
    return {
        "kind": BASELINE_KIND,
        "schema": BASELINE_SCHEMA,
        "suite": Path(suite_path).name,
        "torch": torch.__version__.split("+")[0],
        "note": "deterministic figures only; regenerate with "
        "`hilobench gate --update-baseline --suite <suite>` and review the diff",
        "cases": cases,
    }


def write_baseline(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hilobench.gate")
    parser.add_argument("--serve", action="store_true", help="run a gate worker on stdin/out")
    args = parser.parse_args(argv)
    if not args.serve:
        parser.error("use `hilobench gate` to run the gate; --serve starts a worker")
    serve()


if __name__ == "__main__":
    main()
