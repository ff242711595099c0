"""The environment a worker process runs in: its thread budget, its CPUs, its allocator.

Every framework's worker gets the same. In dlbench's own environment (the default): the thread variables set
to the budget, glibc's malloc thresholds fixed, and (local executor) the last CPUs of the budget to itself,
a core left to the harness and the OS. In the user's (``--environment user``): the thread variables only;
glibc and the scheduler as shipped, which is what a user's own script gets. Recorded with every case
(``describe``), and the comparability key keeps the two apart.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Optional

# Thread knobs set for every worker, whatever its framework, so no framework gets more cores.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                   "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


# name -> what it gives a worker beyond the thread budget (dlbench run --environment)
ENVIRONMENTS = {
    "dlbench": "glibc malloc thresholds fixed at 1 GiB, pinned to the last cores, a core left to the harness",
    "user": "glibc and the scheduler as shipped, unpinned, every core, input pipelines' pools at the framework's "
            "defaults, training timed after one evaluation: what a user's own script gets from its second epoch",
}
DEFAULT_ENVIRONMENT = "dlbench"


def worker_environment(threads: int, verbose: bool, environment: str = DEFAULT_ENVIRONMENT) -> dict[str, str]:
    """The environment of a worker process: the thread budget, the allocator settings of ``environment``,
    and quiet frameworks unless -v."""
    env = dict(os.environ)
    for name in THREAD_ENV_VARS:
        env[name] = str(threads)
    if not verbose:
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(allocator_env(env, environment))
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
# glibc reads these variables once, at process start: a script that sets them in os.environ gets nothing
# from them (docs/fidelity.md).
ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": str(2**30), "MALLOC_TRIM_THRESHOLD_": str(2**30)}


def allocator_env(environ: Mapping[str, str], environment: str = DEFAULT_ENVIRONMENT) -> dict[str, str]:
    """The allocator settings a worker (or a plain script compared with one) runs with: dlbench's fixed
    thresholds, or in the user's environment only those the user set themselves."""
    if environment == "user":
        return {name: environ[name] for name in ALLOCATOR_ENV if environ.get(name)}
    if environ.get("DLBENCH_MALLOC") == "glibc-default":
        return {}
    return {name: environ.get(name, value) for name, value in ALLOCATOR_ENV.items()}


def default_threads(cores: Optional[int] = None, environment: str = DEFAULT_ENVIRONMENT) -> int:
    """The thread budget when ``--threads`` is not given: every core but one, at least one (in the user's
    environment: every core, as a framework takes by default).

    At a budget of every core one of a framework's threads always shares its core with the harness, the
    OS and whatever else runs, and its pool waits for that thread at every barrier. On the 2-core VM, A/A
    runs (A B B A) at 1 thread spread 1.4-1.6% between runs against 2.4-6.0% at 2, and 87% of the quick
    matrix's cases had a training IQR under 5% against 70%; PyTorch mlp64 at 2 threads switched between
    210k and 277k samples/s for seconds at a time (docs/noise.md, section 6).
    """
    cores = cores or os.cpu_count() or 1
    return cores if environment == "user" else max(1, cores - 1)


def worker_cpus(threads: int, environ: Optional[Mapping[str, str]] = None,
                environment: str = DEFAULT_ENVIRONMENT) -> Optional[list[int]]:
    """The CPUs a local worker with ``threads`` threads is pinned to: the last ``threads`` of the CPUs this
    process may use (CPU 0 takes most interrupts and housekeeping), or None (no pinning) when the budget
    takes them all, the platform cannot pin, ``DLBENCH_AFFINITY=off`` or in the user's environment.

    Pinned, the framework's pool stays on the same cores for the whole case, away from the core left to the
    harness and the OS: A/A runs at 1 thread on the 2-core VM had a training IQR above 5% in 4% of records
    pinned against 8-25% unpinned (docs/noise.md, section 6). Only the local executor pins: a Ray node
    runs several cases at once and leaves placement to its scheduler.
    """
    environ = os.environ if environ is None else environ
    if environment == "user" or environ.get("DLBENCH_AFFINITY", "").lower() in ("off", "0", "no"):
        return None
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    if threads >= len(allowed):
        return None
    return allowed[-threads:]


def pinning(threads: int, environment: str = DEFAULT_ENVIRONMENT) -> Optional[Callable[[], None]]:
    """A pre-exec hook for ``subprocess`` pinning a worker (and every thread it starts) to ``worker_cpus``;
    None when not pinning. The fidelity benchmarks give their plain scripts the same."""
    cpus = worker_cpus(threads, environment=environment)
    if not cpus:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    return pin


def describe(cpus: Optional[list[int]], environ: Optional[Mapping[str, str]] = None,
             environment: str = DEFAULT_ENVIRONMENT) -> dict[str, Any]:
    """The record's ``worker_environment``: what the harness set around the worker (the comparability key reads it).

    ``cpus``: the CPUs the worker was pinned to, None when it was left free.
    """
    environ = dict(os.environ if environ is None else environ)
    return {"name": environment, "allocator": allocator_env(environ, environment), "cpus": cpus}
