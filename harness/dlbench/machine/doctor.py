"""Is this machine fit to benchmark on right now, and what would make it fitter? (``dlbench doctor``)

It reads what every record also carries (dlbench.machine.state: steal, the others' load, busy processes, load
average, cgroup CPU quota, frequency governor, turbo), measures the machine's ceiling with the thread
budget (dlbench.machine.peak: float32 GEMM GFLOP/s and copy bandwidth; the value runs use for "% peak"), and
says what to change. The advice follows pyperf's ``system tune`` (the reference for quiet benchmark
machines): a fixed-frequency governor, turbo off, nothing else running, cores to spare.
"""

from __future__ import annotations

import os
import time
from typing import Any

from dlbench.machine import peak, state



def examine(threads: int, seconds: float) -> dict[str, Any]:
    """Every fact doctor reports, measured now."""
    sampler = state.Sampler(threads).start()
    time.sleep(seconds)
    now = sampler.stop()
    now.pop("flags", None)
    for key in ("own_cores", "voluntary_switches", "involuntary_switches", "involuntary_per_s", "minor_faults",
                "major_faults", "allocator"):
        now.pop(key, None)  # doctor's own, while it slept: meaningless here
    measured = {t: peak.measure(t) for t in sorted({1, threads})}
    ceiling = measured.get(threads)
    if ceiling and measured.get(1) and measured[1]["gemm_gflops"] > ceiling["gemm_gflops"]:
        ceiling = {**ceiling, "gemm_gflops_measured": ceiling["gemm_gflops"],  # as peak.measure_ceiling
                   "gemm_gflops": measured[1]["gemm_gflops"]}
    cached = peak.remember(ceiling) if ceiling else peak.cached(threads)
    return {"cpu": _cpu(), "cores": os.cpu_count() or 1, "threads": threads, "settings": state.static_facts(),
            "now": now, "peak_now": ceiling, "peak_one_thread": measured.get(1), "peak_used_by_runs": cached,
            **gpu_ceilings()}


def gpu_ceilings() -> dict[str, Any]:
    """Each GPU library's ceilings on the first GPU, measured now (machine.gpu_peak); why not, without a GPU."""
    from dlbench.machine import gpu_peak
    from dlbench.machine.cpu import gpu_names

    gpus = gpu_names()
    if not gpus:
        return {"gpus": [], "gpu_peak": {}, "gpu_peak_reason": "no NVIDIA GPU here (nvidia-smi lists none)"}
    libraries = gpu_peak.installed()
    reason = "" if libraries else f"none of {', '.join(gpu_peak.LIBRARIES)} is installed"
    return {"gpus": gpus, "gpu_peak": gpu_peak.ceilings(libraries, remeasure=True), "gpu_peak_reason": reason}


def _cpu() -> str:
    from dlbench.machine.cpu import cpu_model

    return cpu_model()


def advice(facts: dict[str, Any]) -> list[str]:
    """What to change, most important first; an empty list means nothing was found."""
    tips = []
    now, settings, cores, threads = facts["now"], facts["settings"], facts["cores"], facts["threads"]
    steal = now.get("steal")
    if steal is not None and steal > state.STEAL_FLAG:
        tips.append(f"CPU steal {100 * steal:.0f}%: the hypervisor gives this VM's CPU time to other guests. Use a "
                    "dedicated (not burstable/shared-core) instance; until then expect run-to-run changes of that "
                    "order, and read the '~ steal' flags")
    others = now.get("others_cores")
    if others is not None and others > max(0, cores - threads) + state.LOAD_FLAG_CORES:
        names = ", ".join(f"{p['name']} (pid {p['pid']}, {p['cores']:.1f} cores)"
                          for p in now.get("busy_processes", []))
        tips.append(f"other processes used {others:.1f} of {cores} cores{': ' + names if names else ''}. Stop them "
                    f"while benchmarking, or leave them cores with --threads {max(1, cores - round(others + 0.49))}")
    quota = settings.get("cgroup_cpus")
    if quota is not None and quota < threads:
        tips.append(f"the cgroup allows {quota:g} CPUs but the budget is {threads} threads: the kernel will "
                    f"throttle the workers in bursts; run with --threads {max(1, int(quota))}")
    if cores > 1 and threads >= cores:
        tips.append(f"the budget of {threads} threads uses every core: one framework thread then shares a core with "
                    f"the harness and the OS, and the pool waits for it (between-run spread 2-4x larger on a 2-core "
                    f"VM, docs/noise.md); run with --threads {cores - 1}, the default")
    governor = settings.get("governor")
    if governor and governor != "performance":
        tips.append(f"CPU frequency governor '{governor}': the clock changes under load. Set 'performance' "
                    "(sudo cpupower frequency-set -g performance), or run `python -m pyperf system tune`")
    if settings.get("turbo") is True:
        tips.append("turbo/boost is on: the clock depends on temperature and on how many cores are busy. Turn it "
                    "off for stable numbers (`python -m pyperf system tune` does, as does writing 1 to "
                    "/sys/devices/system/cpu/intel_pstate/no_turbo)")
    one, budget = facts.get("peak_one_thread"), facts.get("peak_now")
    measured = budget.get("gemm_gflops_measured", budget["gemm_gflops"]) if budget else None
    if one and measured and threads > 1 and measured < 1.2 * one["gemm_gflops"]:
        tips.append(f"GEMM with {threads} threads ({measured:.0f} GFLOP/s) is hardly faster than with "
                    f"one ({one['gemm_gflops']:.0f}): the other cores are busy or are hyper-threads of the same core")
    load = (now.get("load_during") or [0])[0]
    if load > cores:
        tips.append(f"load average {load:.1f} on {cores} cores: more runnable tasks than cores")
    return tips
