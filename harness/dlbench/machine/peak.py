"""The machine's own ceiling, measured: float32 GEMM GFLOP/s with the thread budget, and memory bandwidth.

A reader cannot judge "4,735 samples/s" without knowing what the machine could do at most; the achieved
GFLOP/s of a case as a percentage of this measured peak is the roofline figure tables show.

The measurement runs in a fresh ``python -m dlbench.machine.peak THREADS`` process whose BLAS is limited to the
thread budget through the same environment variables every worker gets (a process that already loaded
numpy cannot change its BLAS thread count reliably). GEMM: square float32 matrix products (numpy's BLAS),
the best call of ~``seconds`` of calls; a ceiling, so the best, not the median. Bandwidth: one-thread
``numpy.copyto`` of 64 MiB (beyond the last-level cache), counted as read + write. Results are cached
per comparability key (``dlbench.machine.identity``: the machine's identity, the thread budget, the
allocator; ``$DLBENCH_CACHE/machine/``), keeping the highest value seen, because a measurement on a busy
machine can only come out low. ``dlbench doctor`` measures again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

GEMM_N = 1024
COPY_BYTES = 64 * 2**20


def measure_here(seconds: float = 0.6) -> dict[str, Any]:
    """GEMM GFLOP/s and copy GB/s in this process, with whatever BLAS threads it has."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((GEMM_N, GEMM_N), dtype=np.float32)
    b = rng.standard_normal((GEMM_N, GEMM_N), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)  # warm-up: thread pool, page faults
    best, calls, began = float("inf"), 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - began < seconds * 0.7:
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
        calls += 1
    gflops = 2 * GEMM_N**3 / best / 1e9
    src = np.ones(COPY_BYTES // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    copy_best, copies, began = float("inf"), 0, time.perf_counter()
    while copies < 3 or time.perf_counter() - began < seconds * 0.3:
        start = time.perf_counter()
        np.copyto(dst, src)
        copy_best = min(copy_best, time.perf_counter() - start)
        copies += 1
    return {"gemm_gflops": round(gflops, 2), "gemm_calls": calls,
            "mem_bandwidth_gbs": round(2 * COPY_BYTES / copy_best / 1e9, 2),
            "blas": _blas_name(np)}


def _blas_name(np: Any) -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older numpy, unusual builds: the name is a nicety
        return "unknown"


def measure(threads: int, seconds: float = 0.6, timeout: float = 60.0) -> Optional[dict[str, Any]]:
    """Measure in a fresh process limited to ``threads`` BLAS threads; None when that fails."""
    from dlbench.machine.environment import worker_environment

    env = worker_environment(threads, verbose=False)
    try:
        done = subprocess.run([sys.executable, "-m", "dlbench.machine.peak", str(threads), str(seconds)], env=env,
                              capture_output=True, text=True, timeout=timeout)
        facts = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return None
    return {**facts, "threads": threads, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _cache_path(threads: int) -> Path:
    """One ceiling per comparability key: this machine (identity, not model name), the budget, the CPU."""
    from dlbench.data.cache import cache_dir
    from dlbench.machine.environment import allocator_env
    from dlbench.machine.identity import ComparabilityKey, Machine, environment_label

    machine = Machine.here()
    key = ComparabilityKey(machine, threads, "cpu", environment_label(allocator_env(dict(os.environ)), None,
                                                                       machine.cores))
    return cache_dir() / "machine" / f"peak-{key.id}.json"


def cached(threads: int) -> Optional[dict[str, Any]]:
    from dlbench.machine.ceilings import read_ceiling

    return read_ceiling(_cache_path(threads), "gemm_gflops")


def remember(facts: dict[str, Any]) -> dict[str, Any]:
    """Store ``facts`` unless the cache already holds a higher ceiling; returns what the cache holds now
    (``machine.ceilings.keep_highest``)."""
    from dlbench.machine.ceilings import keep_highest

    return keep_highest(_cache_path(facts["threads"]), facts, ("gemm_gflops", "mem_bandwidth_gbs"),
                        cached(facts["threads"]))


def measure_ceiling(threads: int) -> Optional[dict[str, Any]]:
    """The ceiling for ``threads``: measured with that many threads and with one, the higher counting.

    On a machine where another process holds a core, a multi-threaded GEMM runs at the pace of its
    slowest thread and can come out below one thread's; a ceiling for N threads is at least one thread's.
    """
    found = measure(threads)
    if found is None or threads == 1:
        return found
    one = measure(1)
    found["gemm_gflops_by_threads"] = {str(threads): found["gemm_gflops"], "1": one["gemm_gflops"] if one else None}
    if one and one["gemm_gflops"] > found["gemm_gflops"]:
        found["gemm_gflops"] = one["gemm_gflops"]
    return found


CEILING_MEASUREMENTS = 3  # a ceiling the best of this many measurements is re-measured only on a quieter machine
QUIETER_BY = 0.5  # ... one whose 1-minute load average is this much below the quietest measurement's


def peak_for_run(threads: int, remeasure: bool = False) -> Optional[dict[str, Any]]:
    """The ceiling for this thread budget: the highest measured so far, measured now (one or two seconds) when
    nothing is cached or ``remeasure`` asks and a new measurement can tell something: a ceiling first measured
    on a busy machine is too low (a run then showed 117-149% of it) until a quieter measurement replaces it,
    but the best of three, measured again at every run, only repeats itself unless the machine is quieter."""
    facts = cached(threads)
    if facts is None or (remeasure and _worth_measuring(facts)):
        load = _load_1m()
        measured = measure_ceiling(threads)
        if measured:
            measured["quietest_load_1m"] = load
        facts = remember(measured) if measured else facts
    return facts


def _worth_measuring(facts: dict[str, Any]) -> bool:
    if int(facts.get("measurements") or 1) < CEILING_MEASUREMENTS:
        return True
    quietest, now = facts.get("quietest_load_1m"), _load_1m()
    return quietest is None or now is None or now < quietest - QUIETER_BY


def _load_1m() -> Optional[float]:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    seconds = float(argv[1]) if len(argv) > 1 else 0.6
    print(json.dumps(measure_here(seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())


def run_facts(threads: int, remeasure: bool = False, gpu: bool = False) -> dict[str, Any]:
    """What every record's ``env`` carries about the machine: ``machine_settings`` (static) and ``peak``; with
    ``gpu`` (the run has GPU cases) also ``gpu_peak``, the GPU's own ceilings per library (machine.gpu_peak)."""
    from dlbench.machine.state import static_facts

    facts = {"machine_settings": static_facts(), "peak": peak_for_run(threads, remeasure)}
    if gpu:
        from dlbench.machine.gpu_peak import ceilings, installed

        facts["gpu_peak"] = ceilings(installed())
    return facts
