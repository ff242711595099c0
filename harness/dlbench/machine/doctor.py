"""``dlbench doctor``: is this machine fit to benchmark on right now, and what would make it fitter?

It reads what every record also carries (dlbench.machine.state: steal, the others' load, busy processes, load
average, cgroup CPU quota, frequency governor, turbo), measures the machine's ceiling with the thread
budget (dlbench.machine.peak: float32 GEMM GFLOP/s and copy bandwidth; the value runs use for "% peak"), and
says what to change. The advice follows pyperf's ``system tune`` (the reference for quiet benchmark
machines): a fixed-frequency governor, turbo off, nothing else running, cores to spare.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from dlbench.machine import peak, state
from dlbench.machine.environment import default_threads

SAMPLE_S = 2.0


def add_command(subparsers: Any) -> None:
    cores = os.cpu_count() or 1
    doctor = subparsers.add_parser("doctor", help="check the machine for benchmarking: noise, settings, peak GFLOP/s",
                                   description="Sample steal time, other processes' load and the load average; read "
                                               "the cgroup CPU quota, governor and turbo; measure the float32 GEMM "
                                               "peak and memory bandwidth with the thread budget; say what to change.")
    doctor.add_argument("--threads", type=_threads(cores), default=default_threads(cores),
                        help=f"thread budget for the peak measurement (default {default_threads(cores)}, "
                             "as `run`: every core but one)")
    doctor.add_argument("--seconds", type=_seconds, default=SAMPLE_S,
                        help=f"how long to watch the machine (default {SAMPLE_S:g})")
    doctor.add_argument("--json", action="store_true", help="print the facts as JSON instead of text")
    doctor.set_defaults(func=doctor_command)


def _threads(cores: int):
    from dlbench.cli import int_in

    return int_in("--threads", 1, cores)


def _seconds(text: str) -> float:
    from dlbench.cli import float_in

    return float_in("--seconds", 0.2, 600)(text)


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
            "now": now, "peak_now": ceiling, "peak_one_thread": measured.get(1), "peak_used_by_runs": cached}


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


def render(facts: dict[str, Any]) -> str:
    now, settings = facts["now"], facts["settings"]

    def show(value: Any, unit: str = "") -> str:
        return "not visible here" if value is None else f"{value}{unit}"

    lines = [f"machine: {facts['cpu']}, {facts['cores']} cores; thread budget {facts['threads']}",
             f"  cgroup CPU quota: {show(settings['cgroup_cpus'], ' CPUs') if settings.get('cgroup_cpus') else 'none'}",
             f"  frequency governor: {show(settings.get('governor'))}; turbo: "
             + ("not visible here" if settings.get("turbo") is None else "on" if settings["turbo"] else "off"),
             f"now (watched {now['window_s']:.1f} s):",
             f"  load average: {show(now.get('load_during'))}",
             f"  CPU steal: {show(None if now.get('steal') is None else round(100 * now['steal'], 1), '%')}",
             f"  cores busy with other processes: {show(now.get('others_cores'))}"]
    for process in now.get("busy_processes") or []:
        lines.append(f"    {process['name']} (pid {process['pid']}): {process['cores']:.2f} cores")
    lines.append("ceiling (float32 GEMM 1024^3 with numpy's BLAS, best call; copy of 64 MiB, one thread):")
    for count in sorted({1, facts["threads"]}, reverse=True):
        found = facts.get("peak_one_thread" if count == 1 else "peak_now")
        if found:
            gflops = found.get("gemm_gflops_measured", found["gemm_gflops"])
            lines.append(f"  {count} thread(s): {gflops:.1f} GFLOP/s, {found['mem_bandwidth_gbs']:.1f} GB/s "
                         f"({found.get('blas', '')})")
    used = facts.get("peak_used_by_runs")
    if used:
        lines.append(f"  runs with --threads {facts['threads']} use {used['gemm_gflops']:.1f} GFLOP/s as 100% "
                     "(the highest measured so far; a busy machine only measures low)")
    tips = advice(facts)
    lines.append("advice:" if tips else "advice: nothing to change; this machine looks quiet right now")
    lines += [f"  - {tip}" for tip in tips]
    return "\n".join(lines)


def doctor_command(args: argparse.Namespace) -> int:
    facts = examine(args.threads, args.seconds)
    if args.json:
        print(json.dumps({**facts, "advice": advice(facts)}, indent=1, default=str))
    else:
        print(render(facts))
    return 0
