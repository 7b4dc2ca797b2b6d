"""A stand-in for SLURM's sbatch, srun and sacct, enough for submitit on one machine.

``install(bin_dir, state_dir)`` writes the three commands into ``bin_dir``; put it first on PATH.
``sbatch FILE`` gives the next job id, prints ``Submitted batch job N`` and runs the script in
the background, once per array index (``#SBATCH --array=0-K%P``), one after another, with the
SLURM_* variables a job sees; ``srun`` runs its command with the ``--output``/``--error``
patterns filled in; ``sacct -j N`` reports ``RUNNING``, ``COMPLETED`` or ``FAILED`` per task
from files in ``state_dir``. Scheduling, partitions and resources are not simulated: the
script's ``#SBATCH`` lines are kept beside the state for tests to read.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

STATE_ENV = "FAKE_SLURM_STATE"


def install(bin_dir: Path, state_dir: Path) -> dict[str, str]:
    """Write the commands; return the environment that makes them SLURM."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    for name in ("sbatch", "srun", "sacct"):
        p = bin_dir / name
        p.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" {name} "$@"\n'
        )
        p.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", STATE_ENV: str(state_dir)}


def _state() -> Path:
    return Path(os.environ[STATE_ENV])


def sbatch(script: str) -> int:
    state = _state()
    counter = state / "next_id"
    job = int(counter.read_text()) if counter.exists() else 1000
    counter.write_text(str(job + 1))
    text = Path(script).read_text()
    (state / f"{job}.sbatch").write_text(text)
    m = re.search(r"^#SBATCH --array=0-(\d+)", text, re.M)
    tasks = [f"{job}_{i}" for i in range(int(m.group(1)) + 1)] if m else [str(job)]
    for t in tasks:
        (state / f"task.{t}").write_text("PENDING")
    copy = str(state / f"{job}.sbatch")  # submitit moves the file once it has the job id
    subprocess.Popen([sys.executable, __file__, "_run", copy, *tasks], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    print(f"Submitted batch job {job}")
    return 0


def _run(script: str, tasks: list[str]) -> int:
    state = _state()
    for t in tasks:
        job, _, index = t.partition("_")
        env = {**os.environ, "SLURM_JOB_ID": job, "SLURM_NTASKS": "1", "SLURM_JOB_NUM_NODES": "1",
               "SLURM_NODEID": "0", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
               "SLURM_JOB_NODELIST": "node1", "SLURMD_NODENAME": "node1",
               "SLURM_CPUS_ON_NODE": "3", "SLURM_JOB_CPUS_PER_NODE": "3"}  # fmt: skip
        if index:
            env.update(SLURM_ARRAY_JOB_ID=job, SLURM_ARRAY_TASK_ID=index)
        (state / f"task.{t}").write_text("RUNNING")
        code = subprocess.call(["bash", script], env=env)
        (state / f"task.{t}").write_text("COMPLETED" if code == 0 else "FAILED")
    return 0


def srun(args: list[str]) -> int:
    files: dict[str, str] = {}
    while args and args[0].startswith("--"):
        flag = args.pop(0)
        if flag in ("--output", "--error"):
            files[flag] = args.pop(0)
    subs = {"%A": os.environ.get("SLURM_ARRAY_JOB_ID", ""),
            "%a": os.environ.get("SLURM_ARRAY_TASK_ID", ""),
            "%j": os.environ["SLURM_JOB_ID"], "%t": "0"}  # fmt: skip
    paths = {}
    for flag, pattern in files.items():
        for k, v in subs.items():
            pattern = pattern.replace(k, v)
        paths[flag] = pattern
    with (
        open(paths.get("--output", os.devnull), "a") as out,
        open(paths.get("--error", os.devnull), "a") as err,
    ):
        return subprocess.call(args, stdout=out, stderr=err)


def sacct(args: list[str]) -> int:
    ids = [args[i + 1] for i, a in enumerate(args) if a == "-j"]
    print("JobID|State|NodeList")
    for job in ids:
        for p in sorted(_state().glob(f"task.{job}*")):
            t = p.name[len("task.") :]
            if t == job or t.startswith(f"{job}_"):
                print(f"{t}|{p.read_text()}|node1")
    return 0


if __name__ == "__main__":
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "sbatch":
        sys.exit(sbatch(rest[-1]))
    if cmd == "_run":
        sys.exit(_run(rest[0], rest[1:]))
    if cmd == "srun":
        sys.exit(srun(rest))
    if cmd == "sacct":
        sys.exit(sacct(rest))
    sys.exit(f"fake_slurm: unknown command {cmd}")
