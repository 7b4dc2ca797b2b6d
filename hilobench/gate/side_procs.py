"""The driver's handles on the two sides: a worker process per revision, or, for tests and
experiments on one revision, a side in this process.

A process side is ``python -m hilobench.gate.side_worker JOB.json OUT.json`` (in revisions
from before the package layout, ``hilobench.worker``) started in the revision's checkout with
that checkout first on ``PYTHONPATH``, so it imports the revision's own hilobench; it must say
so in its hello, or the gate refuses to measure the wrong code. The job and its rows travel as
for every worker job; only the turns go over stdin / stdout.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from hilobench.core.case import Case
from hilobench.core.errors import ConfigError
from hilobench.gate.gate_errors import GateError
from hilobench.gate.side_worker import HELLO, PROTOCOL, SLOWDOWN_ENV, GateSide, parse_slowdown
from hilobench.gate.worktree import SIDE_ENTRIES, side_entry
from hilobench.measure import procenv
from hilobench.run.jobs import GateJob, job_to_json

HELLO_TIMEOUT_S = 180.0
TURN_TIMEOUT_S = 1800.0
END_TIMEOUT_S = 120.0

Row = dict[str, Any]


class TurnError(RuntimeError):
    """A side answered a turn with an error (``config``: a setting it cannot build)."""

    def __init__(self, message: str, config: bool = False):
        super().__init__(message)
        self.config = config


class Side(Protocol):
    """What the driver needs of a side."""

    role: str
    side: str
    env: dict[str, Any]
    env_id: str

    def send(self, msg: Mapping[str, Any]) -> None: ...
    def receive(self) -> dict[str, Any]: ...
    def turn(self, msg: Mapping[str, Any]) -> dict[str, Any]: ...
    def alive(self) -> bool: ...
    def finish(self) -> list[Row]: ...
    def close(self) -> None: ...


def _answer(ans: dict[str, Any]) -> dict[str, Any]:
    if "error" in ans:
        raise TurnError(str(ans["error"]), config=bool(ans.get("config")))
    return ans


class InProcessSide:
    """A side measured in this process, with this process's hilobench."""

    def __init__(
        self,
        cases: Sequence[Case],
        role: str,
        *,
        side: str = "base",
        count: bool = True,
        slowdown: str | None = None,
    ) -> None:
        self.role, self.side = role, side
        knob = parse_slowdown(slowdown)
        self._side = GateSide([c.to_json() for c in cases], count=count, slowdown=knob)
        hello = self._side.hello()
        self.env, self.env_id = hello["env"], hello["env_id"]
        self._pending: list[Mapping[str, Any]] = []

    def send(self, msg: Mapping[str, Any]) -> None:
        self._pending.append(msg)

    def receive(self) -> dict[str, Any]:
        return _answer(self._side.handle(self._pending.pop(0)))

    def turn(self, msg: Mapping[str, Any]) -> dict[str, Any]:
        self.send(msg)
        return self.receive()

    def alive(self) -> bool:
        return True

    def finish(self) -> list[Row]:
        return self._side.result_rows()

    def close(self) -> None:
        self._side.close()


class SideProcess:
    """A worker process running the gate job with the hilobench found in ``root``.

    Construction starts the process and returns at once (both sides start up together);
    :meth:`wait_hello` then checks that it runs the gate protocol from the right checkout.
    """

    def __init__(
        self,
        root: Path,
        role: str,
        cases: Sequence[Case],
        *,
        side: str = "base",
        count: bool = True,
        log: Path | None = None,
        slowdown: str | None = None,
        python: str | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.role, self.side = role, side
        self.log_path = log
        self.env: dict[str, Any] = {}
        self.env_id = ""
        self._tmp = Path(tempfile.mkdtemp(prefix="hilobench-gate-side-"))
        self._out = self._tmp / "out.json"
        job = GateJob(protocol=PROTOCOL, cases=[c.to_json() for c in cases], count=count)
        job_path = self._tmp / "job.json"
        job_path.write_text(json.dumps(job_to_json(job)), encoding="utf-8")
        env = dict(os.environ)
        env.pop(SLOWDOWN_ENV, None)
        if slowdown:
            env[SLOWDOWN_ENV] = slowdown
        env["PYTHONPATH"] = str(self.root) + (
            os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
        )
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        self._log: IO[bytes] | int = open(log, "ab") if log else subprocess.DEVNULL
        module = side_entry(self.root) or SIDE_ENTRIES[0][1]
        cmd = [python or sys.executable, "-m", module, str(job_path), str(self._out)]
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.root,
            env=procenv.worker_env(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self._buf = b""

    def wait_hello(self) -> None:
        """Check the hello: the gate protocol, from this checkout's hilobench."""
        try:
            hello = self._read(HELLO_TIMEOUT_S)
        except (EOFError, TimeoutError, json.JSONDecodeError):
            self.close()
            raise GateError(
                f"the {self.role} code at {self.root} does not run the hilobench gate job "
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
            if hello.get("config"):
                raise ConfigError(str(hello["error"]))
            raise GateError(f"the {self.role} worker: {hello['error']}", self.side)
        pkg = Path(str(hello.get("package", ""))).resolve()
        if pkg != self.root / "hilobench":
            self.close()
            raise GateError(
                f"the {self.role} worker imported hilobench from {pkg}, not from {self.root}: "
                "refusing to measure the wrong code",
                self.side,
            )
        self.env, self.env_id = hello["env"], hello["env_id"]

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
        result: dict[str, Any] = json.loads(line)
        return result

    def send(self, msg: Mapping[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(msg, default=str) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise TurnError(f"{self.role} worker exited{self._log_tail()}") from None

    def receive(self, timeout: float = TURN_TIMEOUT_S) -> dict[str, Any]:
        try:
            return _answer(self._read(timeout))
        except EOFError:
            raise TurnError(f"{self.role} worker exited{self._log_tail()}") from None

    def turn(self, msg: Mapping[str, Any]) -> dict[str, Any]:
        self.send(msg)
        return self.receive()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def finish(self) -> list[Row]:
        """End the job and read its rows (the worker writes them atomically, then exits)."""
        self.send({"turn": "end"})
        try:
            self.proc.wait(timeout=END_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise GateError(f"the {self.role} worker did not finish", self.side) from None
        try:
            rows: list[Row] = json.loads(self._out.read_text(encoding="utf-8"))["rows"]
        except (OSError, ValueError, KeyError):
            raise GateError(
                f"the {self.role} worker ended without its rows{self._log_tail()}", self.side
            ) from None
        return rows

    def close(self) -> None:
        procenv.kill_piped(self.proc)
        if not isinstance(self._log, int):
            self._log.close()
        shutil.rmtree(self._tmp, ignore_errors=True)
