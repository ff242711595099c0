"""The thread budget verified, not claimed: how many threads of this process really ran in the timed blocks.

A plugin says in ``describe()`` how it applied the budget; this module checks it. At the start and end of
every timed block the worker reads, for each thread of its process, the CPU time from
``/proc/self/task/TID/stat`` (utime + stime) and, where the kernel keeps it, the time spent runnable but
waiting for a CPU from ``/proc/self/task/TID/schedstat``. Figures over the timed windows:

- ``parallel``: all threads' CPU time over the wall time (cores used on average);
- ``runnable``: CPU time plus run-queue wait over the wall time: the mean number of threads that wanted a
  CPU at the same time. Unlike ``parallel`` it does not shrink when other processes load the machine (a
  thread kept off a busy core waits on the run queue), and it does not add up threads that take turns:
  TensorFlow hands each step from the Python thread to an executor thread and back, two threads busy
  one after the other, never both runnable;
- ``busy``: threads that were running or runnable at least ``BUSY_SHARE`` of the wall time.

A case is over its budget (``over_thread_budget``) when ``runnable`` exceeds the budget by more than
``SLACK`` (without schedstat: when ``parallel`` does). Housekeeping threads (a JAX dispatch thread, TF's
scheduler wake-ups) run a few percent of the time and stay well inside the slack.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Optional

BUSY_SHARE = 0.25  # running or runnable for this share of the timed wall time: a busy thread
MIN_TIMED_S = 0.1  # shorter timed blocks in all are not judged (over_budget is None)
SLACK = 0.5  # runnable threads on average may exceed the budget by this much (housekeeping, hand-offs)
TASKS = "/proc/self/task"
_TICK_S = 1.0 / (os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)


def available() -> bool:
    return os.path.isdir(TASKS)


def thread_times() -> dict[int, tuple[float, float]]:
    """(CPU seconds, run-queue wait seconds or -1 when unknown) of every live thread, by thread id."""
    times: dict[int, tuple[float, float]] = {}
    try:
        tids = os.listdir(TASKS)
    except OSError:
        return times
    for tid in tids:
        try:
            with open(f"{TASKS}/{tid}/stat", "rb") as handle:
                raw = handle.read()
        except OSError:  # the thread ended between listing and reading
            continue
        fields = raw[raw.rfind(b")") + 2:].split()  # the name may hold spaces; fields after it start at 3
        cpu = (int(fields[11]) + int(fields[12])) * _TICK_S  # fields 14, 15: utime, stime (10 ms ticks)
        try:
            with open(f"{TASKS}/{tid}/schedstat", "rb") as handle:
                run_ns, wait_ns = handle.read().split()[:2]
            cpu, wait = int(run_ns) / 1e9, int(wait_ns) / 1e9  # the same CPU time, in nanoseconds
        except (OSError, IndexError, ValueError):
            wait = -1.0
        times[int(tid)] = (cpu, wait)
    return times


@dataclass
class ThreadMeter:
    """Accumulates per-thread CPU and wait time over timed windows (``start``/``stop`` around each block)."""

    wall_s: float = 0.0
    cpu: dict[int, float] = field(default_factory=dict)
    wait: dict[int, float] = field(default_factory=dict)
    waits_known: bool = True
    windows: int = 0
    peak_threads: int = 0  # most threads alive at a window boundary
    _open: Optional[tuple[float, dict[int, tuple[float, float]]]] = None

    def start(self) -> None:
        snapshot = thread_times()
        self.peak_threads = max(self.peak_threads, len(snapshot))
        self._open = (time.perf_counter(), snapshot)

    def stop(self) -> None:
        if self._open is None:
            return
        began, before = self._open
        wall = time.perf_counter() - began
        after = thread_times()
        self.peak_threads = max(self.peak_threads, len(after))
        for tid, (cpu, wait) in after.items():
            cpu0, wait0 = before.get(tid, (0.0, 0.0))  # a thread born inside the window counts from zero
            if cpu - cpu0 > 0:
                self.cpu[tid] = self.cpu.get(tid, 0.0) + cpu - cpu0
            if wait < 0 or wait0 < 0:
                self.waits_known = False
            elif wait - wait0 > 0:
                self.wait[tid] = self.wait.get(tid, 0.0) + wait - wait0
        self.wall_s += wall
        self.windows += 1
        self._open = None

    def demand(self) -> dict[int, float]:
        """Seconds each thread was running or runnable (CPU only when waits are unknown)."""
        waits = self.wait if self.waits_known else {}
        return {tid: self.cpu.get(tid, 0.0) + waits.get(tid, 0.0) for tid in set(self.cpu) | set(waits)}

    def busy_threads(self, share: float = BUSY_SHARE) -> int:
        if self.wall_s <= 0:
            return 0
        return sum(1 for seconds in self.demand().values() if seconds >= share * self.wall_s)

    def parallel(self) -> float:
        return sum(self.cpu.values()) / self.wall_s if self.wall_s > 0 else 0.0

    def runnable(self) -> float:
        return sum(self.demand().values()) / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self, budget: int) -> dict[str, Any]:
        """The record's ``threads_observed`` entry (empty when nothing was measured)."""
        if not self.windows or self.wall_s <= 0:
            return {}
        runnable = self.runnable()
        shares = sorted((seconds / self.wall_s for seconds in self.demand().values()), reverse=True)
        judged = self.wall_s >= MIN_TIMED_S
        return {"budget": budget, "busy": self.busy_threads(),
                "over_budget": (runnable > budget + SLACK) if judged else None,
                "runnable": round(runnable, 3), "parallel": round(self.parallel(), 3),
                "top_shares": [round(s, 3) for s in shares[:8]], "threads_alive": self.peak_threads,
                "timed_s": round(self.wall_s, 3), "windows": self.windows, "busy_share": BUSY_SHARE, "slack": SLACK,
                "source": "/proc/self/task/*/stat utime+stime" + (" and schedstat run-queue wait"
                                                                  if self.waits_known else "")
                          + " over the timed training and Offline blocks"}


class NullMeter(ThreadMeter):
    """Where /proc is missing: measures nothing."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def new_meter() -> ThreadMeter:
    return ThreadMeter() if available() else NullMeter()
