"""The thread budget for JAX/XLA on the CPU: every knob XLA's CPU client has, set before it starts.

XLA has no ``set_num_threads``. Its CPU client sizes two pools from ``NPROC`` (``PJRT_NPROC`` first) when it
is made: ``XLAEigen`` (intra-op: Eigen's matmuls and convolutions, and thunks the runtime runs side by
side) and the PjRt client's pool (asynchronous dispatch: each computation runs on one of its threads while
Python goes on). Found with ``/proc/self/task`` and gdb here (jax 0.10, 2 cores): with ``NPROC=1`` and
``--xla_cpu_multi_thread_eigen=false`` alone, a jitted CNN training step still ran on two threads at once,
a dispatch-pool thread executing the step and the one ``XLAEigen`` thread running independent thunks
beside it (XLA's thunk executor hands part of its ready queue to the intra-op pool; its "run sequentially"
thresholds are compile-time constants, no flag): 1.33 cores' worth of CPU at a budget of 1. What bounds it:

- ``NPROC=n``: both pools get n threads (a pool never has fewer than one);
- ``--xla_cpu_multi_thread_eigen=false`` at n = 1: Eigen ops run on the executing thread, not handed off;
- ``--xla_cpu_enable_concurrency_optimized_scheduler=false``: the schedule then reuses buffers in program
  order, which chains the thunks, so the executor runs them one after another instead of independent ones
  side by side;
- ``jax_cpu_enable_async_dispatch=False``: each computation runs on the calling (Python) thread instead of
  on a dispatch-pool thread beside it (at n = 2 both dispatch threads were busy during Offline inference).

With all four, cnn on digits through the worker kept 1.00 threads' worth of CPU busy at ``--threads 1``
(1.36-1.43 before) and 1.67-1.84 at 2 (1.97-2.47 before), at the same or better throughput
(docs/fairness.md). What is left at n >= 2: the calling thread can work beside the n pool threads (XLA's
thunk executor does not count it against the pool's concurrency), a few tenths of a thread here.

``--xla_force_host_platform_device_count`` is left alone: one CPU device (more devices need at least as
many threads).

A GPU case leaves ``NPROC`` unset: the computation runs on the GPU, while XLA's GPU client sizes its host
pools from it, among them the pool that compiles the GEMM autotuner's candidate kernels. On the first H200
run the JAX GPU kit made no progress for over 55 s in its second model's session at ``NPROC=1`` (suspected,
not proven: candidates compiled one at a time); the CPU flags stay (they touch only a CPU client).

The settings apply to the process's CPU client, so they must be in place before jax is
first imported; a process that already imported jax keeps what it has, and the description says so.
"""

from __future__ import annotations

import os
import sys

ONE_THREAD_EIGEN = "--xla_cpu_multi_thread_eigen=false"
SEQUENTIAL_SCHEDULE = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
_APPLIED: dict[int, str] = {}  # budget -> how it was applied, once per process


def jax_thread_budget(threads: int, device: str = "cpu") -> str:
    """Apply ``threads`` to XLA's CPU client, import jax and create its clients; return how, for
    ``describe()["threads"]``.

    Call it before anything imports jax (a plugin's ``prepare``), with ``JAX_PLATFORMS`` already chosen. Flags
    already in ``XLA_FLAGS`` win. ``NPROC`` and ``XLA_FLAGS`` are read when the clients are made, here; they
    are then put back as they were, so that processes started later (a test's workers) do not inherit them.
    """
    if "jax" in sys.modules:
        if _APPLIED.get(threads):
            return _APPLIED[threads]  # a second session in the same process: the pools made for the first
        made = f"made by this helper for {', '.join(map(str, _APPLIED))} threads" if _APPLIED else "not sized here"
        return (f"not applied: jax was already imported in this process (its CPU pools were {made}; "
                f"NPROC={os.environ.get('NPROC', 'unset')}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r})")
    saved = {name: os.environ.get(name) for name in ("NPROC", "XLA_FLAGS")}
    flags = os.environ.get("XLA_FLAGS", "").split()
    wanted = [SEQUENTIAL_SCHEDULE] + ([ONE_THREAD_EIGEN] if threads == 1 else [])
    flags += [flag for flag in wanted if not any(f.startswith(flag.split("=")[0]) for f in flags)]
    os.environ["XLA_FLAGS"] = " ".join(flags)
    if device == "cpu":
        os.environ["NPROC"] = str(threads)
    try:
        import jax

        if device == "cpu":
            jax.config.update("jax_cpu_enable_async_dispatch", False)
        jax.devices()  # the clients read NPROC and XLA_FLAGS now
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    how = [f"NPROC={threads} (XLA's CPU client: {threads}-thread XLAEigen intra-op pool and dispatch pool)"
           if device == "cpu" else "GPU: NPROC left unset (XLA's host pools, the autotuner's compiles among them, "
                                   "at their defaults; the computation runs on the GPU)",
           f"XLA_FLAGS={' '.join(flags)!r}"]
    if device == "cpu":
        how.append("jax_cpu_enable_async_dispatch=False (computations run on the calling thread)")
    _APPLIED[threads] = "; ".join(how) + ", set before jax made its clients"
    return _APPLIED[threads]
