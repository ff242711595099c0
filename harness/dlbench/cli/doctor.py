"""``dlbench doctor``: the machine's fitness for benchmarking now (``dlbench.machine.doctor``), shown."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from dlbench.cli.args import float_in, int_in
from dlbench.machine.doctor import advice, examine
from dlbench.machine.environment import default_threads

SAMPLE_S = 2.0


def add_command(subparsers: Any) -> None:
    cores = os.cpu_count() or 1
    doctor = subparsers.add_parser("doctor", help="check the machine for benchmarking: noise, settings, peak GFLOP/s",
                                   description="Sample steal time, other processes' load and the load average; read "
                                               "the cgroup CPU quota, governor and turbo; measure the float32 GEMM "
                                               "peak and memory bandwidth with the thread budget, and on a GPU its "
                                               "own GEMM (float32, TF32, bfloat16) and copy ceilings per library; "
                                               "say what to change.")
    doctor.add_argument("--threads", type=_threads(cores), default=default_threads(cores),
                        help=f"thread budget for the peak measurement (default {default_threads(cores)}, "
                             "as `run`: every core but one)")
    doctor.add_argument("--seconds", type=_seconds, default=SAMPLE_S,
                        help=f"how long to watch the machine (default {SAMPLE_S:g})")
    doctor.add_argument("--json", action="store_true", help="print the facts as JSON instead of text")
    doctor.set_defaults(func=doctor_command)


def _threads(cores: int):
    return int_in("--threads", 1, cores)


def _seconds(text: str) -> float:
    return float_in("--seconds", 0.2, 600)(text)


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
    lines += gpu_lines(facts)
    tips = advice(facts)
    lines.append("advice:" if tips else "advice: nothing to change; this machine looks quiet right now")
    lines += [f"  - {tip}" for tip in tips]
    return "\n".join(lines)


def gpu_lines(facts: dict[str, Any]) -> list[str]:
    """The GPU's own ceilings per library (what GPU cases' % peak and regime are judged against)."""
    if not facts.get("gpu_peak"):
        return [f"GPU ceilings: {facts.get('gpu_peak_reason') or 'not measured'}"]
    lines = [f"GPU ceilings on {facts['gpus'][0]} (GEMM best call; copy read + write; GPU cases use their "
             "library's, in their precision):"]
    for library, found in facts["gpu_peak"].items():
        if "error" in found:
            lines.append(f"  {library}: not measured: {found['error']}")
            continue
        lines.append(f"  {found.get('library', library)}: float32 (TF32 off) {found['float32_gflops']:,.0f}, TF32 "
                     f"{found['tf32_gflops']:,.0f}, bfloat16 {found['bfloat16_gflops']:,.0f} GFLOP/s "
                     f"(n={found.get('n')}); copy {found['copy_gbs']:,.0f} GB/s")
    return lines


def doctor_command(args: argparse.Namespace) -> int:
    facts = examine(args.threads, args.seconds)
    if args.json:
        print(json.dumps({**facts, "advice": advice(facts)}, indent=1, default=str))
    else:
        print(render(facts))
    return 0
