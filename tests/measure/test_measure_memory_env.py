"""Memory measurement and the environment fingerprint."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys

import pytest
import torch

from hilobench.measure import env, memory

# ---------------------------------------------------------------- peak_tensor_bytes

KEPT: list[torch.Tensor] = []


def test_peak_tensor_bytes_kept_tensor_exact_and_deterministic():
    def fn():
        KEPT.append(torch.empty(1000, dtype=torch.float32))

    try:
        assert memory.peak_tensor_bytes(fn) == 4000
        assert memory.peak_tensor_bytes(fn) == 4000
    finally:
        KEPT.clear()


def test_peak_tensor_bytes_temporaries():
    def two_alive():
        a = torch.ones(1000)
        b = torch.ones(1000, dtype=torch.float64)
        del a, b
        torch.ones(500)

    def one_at_a_time():
        for _ in range(3):
            t = torch.ones(1000)
            del t

    assert memory.peak_tensor_bytes(two_alive) == 4000 + 8000
    assert memory.peak_tensor_bytes(one_at_a_time) == 4000


def test_peak_tensor_bytes_chain_and_views():
    def chain():
        a = torch.ones(1000)
        c = a + 1
        return (c * 2).sum()  # a, c, c*2 and the scalar are alive together

    def views():
        a = torch.ones(1000)
        a.view(10, 100)
        a[::2].add_(1)
        a.reshape(100, 10).t()
        a.unsqueeze(0).expand(3, 1000)

    assert memory.peak_tensor_bytes(chain) == 3 * 4000 + 4
    assert memory.peak_tensor_bytes(chain) == 3 * 4000 + 4
    assert memory.peak_tensor_bytes(views) == 4000


def test_peak_tensor_bytes_ignores_preexisting_storage():
    x = torch.zeros(1000)
    assert memory.peak_tensor_bytes(lambda: x.view(10, 100).add_(1)) == 0
    assert memory.peak_tensor_bytes(lambda: x + 1) == 4000


def test_peak_tensor_bytes_module_meta_and_literal():
    lin = torch.nn.Linear(16, 32).eval()
    x = torch.randn(4, 16)

    def fwd():
        with torch.inference_mode():
            lin(x)

    assert memory.peak_tensor_bytes(fwd) == 4 * 32 * 4  # the output only; weights pre-exist
    assert memory.peak_tensor_bytes(lambda: torch.empty(1000, device="meta")) == 4000
    assert memory.peak_tensor_bytes(lambda: torch.tensor([1.0, 2.0, 3.0])) == 12


def test_peak_tensor_bytes_training_step_deterministic():
    torch.manual_seed(0)
    lin = torch.nn.Linear(16, 32)
    x = torch.randn(4, 16)

    def step():
        lin.zero_grad(set_to_none=True)
        lin(x).relu().sum().backward()

    first = memory.peak_tensor_bytes(step)
    assert first > 0
    assert memory.peak_tensor_bytes(step) == first


# ---------------------------------------------------------------- RSS, CUDA, OOM


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux-only")
def test_peak_rss_rise_sees_50mb():
    # In a fresh process, as the function's docstring asks: in a long test session the
    # allocator may hand back pages that earlier tests left resident, which is no rise.
    code = (
        "import numpy as np; from hilobench.measure import memory\n"
        "def touch():\n"
        "    buf = np.ones(50_000_000 // 8)  # writes every page\n"
        "    del buf\n"
        "print(memory.peak_rss_rise(touch))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()[-1]  # fmt: skip
    if out == "None":
        pytest.skip("high-water mark reset refused here")
    assert int(out) > 25_000_000


def test_peak_rss_rise_none_off_linux(monkeypatch):
    monkeypatch.setattr(memory.sys, "platform", "darwin")
    assert memory.peak_rss_rise(lambda: None) is None


def test_cuda_peak_bytes_rejects_cpu():
    with pytest.raises(ValueError):
        memory.cuda_peak_bytes(lambda: None, "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_peak_bytes_counts_allocation():
    def fn():
        torch.empty(1 << 20, dtype=torch.uint8, device="cuda")

    assert memory.cuda_peak_bytes(fn, "cuda") >= 1 << 20


def test_is_oom():
    assert memory.is_oom(torch.OutOfMemoryError("CUDA out of memory."))
    assert memory.is_oom(MemoryError())
    assert memory.is_oom(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert memory.is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: 1e12 bytes"))
    assert not memory.is_oom(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not memory.is_oom(ValueError("bad window"))


# ---------------------------------------------------------------- environment


def test_fingerprint_keys_and_json():
    fp = env.fingerprint(threads=2)
    expected = {
        "cpu_model",
        "cpu_physical_cores",
        "cpu_logical_cores",
        "threads",
        "ram_total_bytes",
        "os",
        "python",
        "torch",
        "cuda",
        "cudnn",
        "gpu_name",
        "gpu_memory_bytes",
        "mkl",
        "mkldnn",
        "cudnn_benchmark",
        "tf32_matmul",
        "tf32_cudnn",
        "hilobench_version",
        "git_commit",
        "git_dirty",
        "timestamp",
    }
    assert expected <= fp.keys()
    assert fp["threads"] == 2
    assert fp["torch"] == torch.__version__
    assert fp["gpu_name"] is None  # cpu device
    assert env.fingerprint()["threads"] == torch.get_num_threads()
    json.dumps(fp)
    host = platform.node()
    if host:
        assert host not in json.dumps(fp)


def test_env_id_stable_and_sensitive_to_identity_only():
    a, b = env.fingerprint(), env.fingerprint()
    assert env.env_id(a) == env.env_id(b)
    assert len(env.env_id(a)) == 12
    settings = dict(a, timestamp="2000-01-01T00:00:00+00:00", git_commit="0" * 40, threads=99)
    assert env.env_id(settings) == env.env_id(a)
    assert env.env_id(dict(a, torch="0.0.1")) != env.env_id(a)
    assert env.env_id(dict(a, cpu_model="Other CPU")) != env.env_id(a)


def test_compare_envs():
    a = env.fingerprint()
    assert env.compare_envs(a, dict(a)) == []
    assert env.compare_envs(a, dict(a, timestamp="later", threads=99)) == []
    diffs = env.compare_envs(a, dict(a, cpu_model="Other CPU", torch="0.0.1"))
    assert len(diffs) == 2
    assert any("cpu_model" in d and "Other CPU" in d for d in diffs)
    assert any(d.startswith("torch:") for d in diffs)


def test_git_state_outside_and_inside_a_checkout(tmp_path):
    assert env.git_state(tmp_path) == (None, None)
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.com"]

    def git(*args: str) -> None:
        subprocess.run(["git", *ident, "-C", str(repo), *args], check=True, capture_output=True)

    git("init", "-q")
    (repo / "f.txt").write_text("x")
    git("add", "f.txt")
    git("commit", "-q", "-m", "init")
    commit, dirty = env.git_state(repo)
    assert commit is not None and len(commit) == 40 and dirty is False
    (repo / "f.txt").write_text("y")
    assert env.git_state(repo) == (commit, True)
