"""What the machine was doing while a case was timed, and how it is set: the facts that say how far to trust a number.

On a shared VM a benchmark competes with the hypervisor (CPU *steal*: time a virtual CPU wanted to run
but the host ran someone else) and with other processes (*load*). Neither shows in the timings as such;
both slow some blocks and not others. ``Sampler`` reads them around the timed part of a case, at a cost
of a few milliseconds outside the timed blocks:

- ``/proc/stat`` (aggregate CPU jiffies): steal share and how many cores were busy machine-wide;
- ``getrusage`` of the worker: its own CPU seconds (so busy minus own = the others' load) and its
  involuntary context switches (the scheduler took a core away from it);
- ``/proc/PID/stat`` of every process, twice: who else used the CPU during the window;
- the load average before and at the end of the window.

A case is flagged with the reason (``steal 14%``, ``load 1.3 cores``) when steal or the others' load
during its window exceeds a threshold. Static facts (cgroup CPU quota, frequency governor, turbo) are
read once per run. Linux only; elsewhere the readers return None and nothing is flagged.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

STEAL_FLAG = 0.05  # steal share of the window from which a case is flagged
WAIT_FLAG = 0.10  # share of its runnable time the worker's busiest thread waited for a CPU, from which it is flagged
LOAD_FLAG_CORES = 0.25  # cores used by other processes, beyond the cores the budget leaves free
MIN_WINDOW_S = 0.2  # shorter windows hold too few jiffies (10 ms each) to flag anything
PAGING_FLAG = 1000.0  # page faults a training step from which a case is flagged (the fidelity protocol uses it too)
BUSY_PROCESS_CORES = 0.05  # a process counts as busy from this CPU share
TOP_PROCESSES = 5

try:
    _TICKS = os.sysconf("SC_CLK_TCK")
except (AttributeError, ValueError, OSError):
    _TICKS = 100


@dataclass(frozen=True)
class CpuTimes:
    """Aggregate CPU jiffies of the machine (all CPUs together), from the first line of /proc/stat."""

    total: int
    idle: int  # idle + iowait
    steal: int

    @property
    def busy(self) -> int:
        return self.total - self.idle - self.steal


def parse_proc_stat(text: str) -> Optional[CpuTimes]:
    """The ``cpu`` line of /proc/stat: user nice system idle iowait irq softirq steal guest guest_nice.

    guest and guest_nice are already counted in user and nice, so they are left out of the total.
    """
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            values = [int(v) for v in fields[1:]] + [0] * 10
            user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
            total = user + nice + system + idle + iowait + irq + softirq + steal
            return CpuTimes(total, idle + iowait, steal)
    return None


def cpu_times(path: str = "/proc/stat") -> Optional[CpuTimes]:
    try:
        return parse_proc_stat(Path(path).read_text())
    except (OSError, ValueError):
        return None


def load_average() -> Optional[list[float]]:
    """1, 5 and 15-minute load averages (runnable + uninterruptible tasks), or None where unknown."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def process_cpu(proc: str = "/proc") -> dict[int, tuple[str, float]]:
    """pid -> (command name, CPU seconds so far) of every process readable in ``proc``."""
    found: dict[int, tuple[str, float]] = {}
    try:
        names = os.listdir(proc)
    except OSError:
        return found
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"{proc}/{name}/stat", "rb") as handle:
                raw = handle.read().decode(errors="replace")
        except OSError:  # gone, or not ours to read
            continue
        close = raw.rfind(")")
        fields = raw[close + 2:].split()  # after "pid (comm) ": state ppid ... utime(12th) stime(13th)
        if close < 0 or len(fields) < 13:
            continue
        command = raw[raw.find("(") + 1:close]
        found[int(name)] = (command, (int(fields[11]) + int(fields[12])) / _TICKS)
    return found


def busy_processes(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], seconds: float,
                   exclude: frozenset[int] = frozenset(), top: int = TOP_PROCESSES) -> list[dict[str, Any]]:
    """The processes that used the most CPU between two ``process_cpu`` snapshots (cores, name, pid)."""
    if seconds <= 0:
        return []
    busy = []
    for pid, (command, used) in after.items():
        if pid in exclude:
            continue
        cores = (used - before[pid][1] if pid in before else used) / seconds  # new: all its time is in the window
        if cores >= BUSY_PROCESS_CORES:
            busy.append({"pid": pid, "name": command, "cores": round(cores, 2)})
    busy.sort(key=lambda p: -p["cores"])
    return busy[:top]


def _affinity() -> Optional[list[int]]:
    """The CPUs this worker may run on (dlbench pins local workers: ``worker_cpus``)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime


def _switches() -> tuple[int, int, int, int]:
    """Voluntary and involuntary context switches, minor and major page faults of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_nvcsw, usage.ru_nivcsw, usage.ru_minflt, usage.ru_majflt


class Sampler:
    """Reads the machine around the timed part of a case; ``stop()`` returns ``metrics.machine_state``.

    ``threads`` is the case's thread budget: cores beyond it may be used by others without a flag.
    """

    def __init__(self, threads: int, cores: Optional[int] = None) -> None:
        self.threads = threads
        self.cores = cores or os.cpu_count() or 1
        self.load_before = load_average()
        self._started = 0.0

    def start(self) -> "Sampler":
        self._procs = process_cpu()
        self._cpu = cpu_times()
        self._own = _own_cpu_s()
        self._switches = _switches()
        self._started = time.perf_counter()
        return self

    def stop(self) -> dict[str, Any]:
        window = time.perf_counter() - self._started
        own = _own_cpu_s() - self._own
        voluntary, involuntary, minor, major = (after - before for after, before in zip(_switches(), self._switches))
        cpu = cpu_times()
        procs = process_cpu()
        result: dict[str, Any] = {
            "window_s": round(window, 3), "load_before": self.load_before, "load_during": load_average(),
            "own_cores": round(own / window, 3) if window else None, "voluntary_switches": voluntary,
            "involuntary_switches": involuntary,
            "involuntary_per_s": round(involuntary / window, 1) if window else None,
            "minor_faults": minor, "major_faults": major,  # an allocator that returns memory every step shows here
            "allocator": {name: os.environ.get(name) for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")},
            "affinity": _affinity()}
        if cpu is not None and self._cpu is not None and cpu.total > self._cpu.total and window > 0:
            total = cpu.total - self._cpu.total
            result["steal"] = round((cpu.steal - self._cpu.steal) / total, 4)
            busy_cores = (cpu.busy - self._cpu.busy) / _TICKS / window
            result["busy_cores"] = round(busy_cores, 3)
            result["others_cores"] = round(max(0.0, busy_cores - own / window), 3)
        me = frozenset({os.getpid(), os.getppid()})
        result["busy_processes"] = busy_processes(self._procs, procs, window, exclude=me)
        result["flags"] = flags(result, self.threads, self.cores)
        return result


def flags(machine: dict[str, Any], threads: int, cores: int) -> list[str]:
    """The reasons a case's window was disturbed, as shown next to its numbers: 'steal 14%', 'load 1.3 cores'."""
    if (machine.get("window_s") or 0) < MIN_WINDOW_S:
        return []
    reasons = []
    steal = machine.get("steal")
    if steal is not None and steal > STEAL_FLAG:
        reasons.append(f"steal {100 * steal:.0f}%")
    others = machine.get("others_cores")
    free = max(0, cores - threads)
    if others is not None and others > free + LOAD_FLAG_CORES:
        reasons.append(f"load {others:.1f} cores")
    return reasons


def wait_flag(cpu_share: Any, timed_s: Any) -> Optional[str]:
    """'wait 43%' when the worker's busiest thread spent that share of its runnable time waiting for a CPU
    (``threads_observed.cpu_share`` from schedstat), else None.

    The machine-wide load misses a core shared with one other process: a worker pinned to CPU 1 got 57% of
    it while ``others_cores`` read 0.57 of the 1 core its budget left free, so no ``load`` flag (docs/fidelity.md).
    """
    if not isinstance(cpu_share, (int, float)) or not isinstance(timed_s, (int, float)) or timed_s < MIN_WINDOW_S:
        return None
    waited = 1.0 - cpu_share
    return f"wait {100 * waited:.0f}%" if waited > WAIT_FLAG else None


def paging_flag(faults_per_step: Any) -> Optional[str]:
    """'paging 2440 faults/step' when training page-faulted more than PAGING_FLAG times a step, else None.

    glibc's adaptive malloc thresholds (the user's environment, or a worker started without dlbench's) map and
    unmap a PyTorch LSTM's buffers every step (~13,000 faults a step) and a CNN's in some processes and not in
    others, drawn per process by its address layout, hash seed and more: 0.1 to ~9,000 faults a step, 3.4k-6.7k
    samples per CPU second for one case (docs/fidelity.md, section 6). A single run's number may then be one
    draw: the table says so.
    """
    if isinstance(faults_per_step, (int, float)) and faults_per_step > PAGING_FLAG:  # NaN compares False
        return f"paging {faults_per_step:.0f} faults/step"
    return None


def cgroup_cpus(root: str = "/sys/fs/cgroup") -> Optional[float]:
    """CPUs this process's cgroup may use (quota / period), or None when unlimited or unknown."""
    base = Path(root)
    try:
        text = (base / "cpu.max").read_text().split()  # cgroup v2: "max 100000" or "150000 100000"
        return None if text[0] == "max" else int(text[0]) / int(text[1])
    except (OSError, IndexError, ValueError):
        pass
    try:  # cgroup v1
        quota = int((base / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((base / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def governor(root: str = "/sys/devices/system/cpu") -> Optional[str]:
    """The CPU frequency governor(s) in use ('performance', 'powersave', ...), or None (a VM often has none)."""
    found = set()
    for path in sorted(Path(root).glob("cpu[0-9]*/cpufreq/scaling_governor")):
        try:
            found.add(path.read_text().strip())
        except OSError:
            continue
    return "/".join(sorted(found)) or None


def turbo(root: str = "/sys/devices/system/cpu") -> Optional[bool]:
    """Whether turbo/boost is on (True), off (False) or not visible here (None)."""
    try:
        return (Path(root) / "intel_pstate" / "no_turbo").read_text().strip() == "0"
    except OSError:
        pass
    try:
        return (Path(root) / "cpufreq" / "boost").read_text().strip() == "1"
    except OSError:
        return None


def static_facts() -> dict[str, Any]:
    """The machine's settings that bear on stable timings, read once per run."""
    return {"cgroup_cpus": cgroup_cpus(), "governor": governor(), "turbo": turbo(), "load_average": load_average()}
