"""The machine a run happened on, captured once per run and copied into every record."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import dlbench
from dlbench.probes import cpu_model, gpu_names

# Thread knobs set for every worker, whatever its framework, so no framework gets more cores.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                   "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def git_commit() -> str:
    """The dlbench source commit (with '+dirty' when the tree has changes), or '' outside a checkout."""
    source = Path(dlbench.__file__).resolve().parents[2]  # harness/dlbench/__init__.py -> the checkout
    if not (source / ".git").exists() or not shutil.which("git"):
        return ""
    try:
        head = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return head + ("+dirty" if dirty else "")


def capture() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 1,
        "gpu": gpu_names(),
        "dlbench_version": dlbench.__version__,
        "git_commit": git_commit(),
        "hostname": socket.gethostname(),
    }


def worker_environment(threads: int, verbose: bool) -> dict[str, str]:
    """The environment of a worker process: the thread budget, and quiet frameworks unless -v."""
    env = dict(os.environ)
    for name in THREAD_ENV_VARS:
        env[name] = str(threads)
    if not verbose:
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(allocator_env(env))
    return env


# glibc's malloc adapts its mmap and trim thresholds to the sizes a process happens to free, so two processes
# of one case can run in different regimes: one hands its large activation buffers back to the kernel after
# every step and page-faults them in again (PyTorch CNN training on CPU: thousands of minor faults a step),
# the other keeps them; an evaluation in between can switch a process from one to the other mid-run. Fixed
# thresholds put every worker of every framework in the second regime from its first step (docs/noise.md).
# 1 GiB, not glibc's 32 MiB ceiling: PyTorch's eager CNN inference at batch 1024 frees 88-151 MB activations
# each call, which a 32 MiB threshold still maps and unmaps (54,000 faults a call, 8.7k samples/s against
# 29.5k kept on the heap); XLA's CNN training step allocates its temporaries as one such buffer (JAX cnn
# trained at 2.3k samples/s, 4.9k with 1 GiB); TensorFlow keeps its own buffers. It is what the
# caching allocators PyTorch's CPU tuning guide recommends (jemalloc, tcmalloc) do for large blocks.
# A value already in the environment wins; DLBENCH_MALLOC=glibc-default leaves glibc's adaptive behaviour.
ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": str(2**30), "MALLOC_TRIM_THRESHOLD_": str(2**30)}


def allocator_env(environ: dict[str, str]) -> dict[str, str]:
    """The allocator settings a worker (or a plain script compared with one) runs with."""
    if environ.get("DLBENCH_MALLOC") == "glibc-default":
        return {}
    return {name: environ.get(name, value) for name, value in ALLOCATOR_ENV.items()}
