"""The thread budget verified, not claimed: how many threads of this process really ran in the timed blocks.

A plugin says in ``describe()`` how it applied the budget; this module checks it. At the start and end of
every timed block the worker reads, for each thread of its process, the CPU time from
``/proc/self/task/TID/stat`` (utime + stime) and, where the kernel keeps it, the time spent runnable but
waiting for a CPU from ``/proc/self/task/TID/schedstat``. Figures over the timed windows:

- ``parallel``: all threads' CPU time over the wall time (cores used on average; it shrinks when other
  processes load the machine);
- ``runnable``: CPU time plus run-queue wait over the wall time: the mean number of threads that wanted a
  CPU at the same time. It does not shrink under load (a thread kept off a busy core waits on the run
  queue), but it grows with it for threads that take turns (below);
- ``busy``: threads that were running or runnable at least ``BUSY_SHARE`` of the wall time;
- ``concurrency``: the threads' worth of CPU the process would have kept busy on an idle machine:
  ``parallel`` divided by ``cpu_share``, the share of a CPU its busiest thread (the most CPU time) got
  while it was runnable. This is the figure the budget is judged on.

Why not ``runnable``: on a loaded machine every wake-up waits on the run queue while the thread that
woke it is still runnable too, so threads that strictly take turns add up. Measured here (2 cores, load
average 5-8): a Python thread handing each matmul to a pool thread and blocking on the result, never two
at once, read ``runnable`` 1.5-1.6 -- over a budget of 1 -- while two threads computing at the same time
read 1.3-1.5. ``concurrency`` read 1.0-1.09 for the first and 1.56 for the second. It divides out the load
with the busiest thread's own share (proportional sharing, the same for every thread of the process) and
leaves the wake-up latencies of threads that mostly sleep out. ``parallel`` (and so ``concurrency``)
comes from ``time.process_time()`` deltas, which also count threads that ended inside a window.

A case is over its budget (``over_thread_budget``) when ``concurrency`` exceeds the budget by more than
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
    process_cpu_s: float = 0.0  # the whole process's CPU time in the windows, ended threads included
    _open: Optional[tuple[float, dict[int, tuple[float, float]]]] = None
    _process_cpu0: float = 0.0

    def start(self) -> None:
        # the clocks start before the snapshot and stop after the next one, so that the reads' own CPU time
        # (~0.3 ms for 15 threads) lies inside the window's wall time too: with the clocks inside, a 13 ms
        # block of one busy thread read as 1.06-1.07 threads
        began, self._process_cpu0 = time.perf_counter(), time.process_time()
        snapshot = thread_times()
        self.peak_threads = max(self.peak_threads, len(snapshot))
        self._open = (began, snapshot)

    def stop(self) -> None:
        if self._open is None:
            return
        began, before = self._open
        after = thread_times()
        self.process_cpu_s += time.process_time() - self._process_cpu0
        wall = time.perf_counter() - began
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

    def _exited_cpu_s(self) -> float:
        """CPU seconds of threads that ended inside a window (the process's total minus the live threads')."""
        return max(0.0, self.process_cpu_s - sum(self.cpu.values()))

    def parallel(self) -> float:
        cpu = max(self.process_cpu_s, sum(self.cpu.values()))
        return cpu / self.wall_s if self.wall_s > 0 else 0.0

    def runnable(self) -> float:
        return (sum(self.demand().values()) + self._exited_cpu_s()) / self.wall_s if self.wall_s > 0 else 0.0

    def cpu_share(self) -> float:
        """The share of a CPU the busiest thread got while it was running or runnable (1.0 on an idle machine,
        or where run-queue waits are unknown)."""
        if not self.waits_known or not self.cpu:
            return 1.0
        top = max(self.cpu, key=self.cpu.__getitem__)
        wanted = self.cpu[top] + self.wait.get(top, 0.0)
        return self.cpu[top] / wanted if wanted > 0 else 1.0

    def concurrency(self) -> float:
        """Threads' worth of CPU the process would have kept busy on an idle machine (see the module doc)."""
        if self.wall_s <= 0:
            return 0.0
        share = self.cpu_share()
        return min(self.parallel() / share, self.runnable()) if share > 0 else self.runnable()

    def summary(self, budget: int) -> dict[str, Any]:
        """The record's ``threads_observed`` entry (empty when nothing was measured)."""
        if not self.windows or self.wall_s <= 0:
            return {}
        concurrency = self.concurrency()
        shares = sorted((seconds / self.wall_s for seconds in self.demand().values()), reverse=True)
        judged = self.wall_s >= MIN_TIMED_S
        return {"budget": budget, "busy": self.busy_threads(),
                "over_budget": (concurrency > budget + SLACK) if judged else None,
                "concurrency": round(concurrency, 3), "cpu_share": round(self.cpu_share(), 3),
                "runnable": round(self.runnable(), 3), "parallel": round(self.parallel(), 3),
                "top_shares": [round(s, 3) for s in shares[:8]], "threads_alive": self.peak_threads,
                "timed_s": round(self.wall_s, 3), "windows": self.windows, "busy_share": BUSY_SHARE, "slack": SLACK,
                "source": "/proc/self/task/*/stat utime+stime" + (" and schedstat run-queue wait"
                                                                  if self.waits_known else "")
                          + ", time.process_time() over the timed training and Offline blocks"}


class NullMeter(ThreadMeter):
    """Where /proc is missing: measures nothing."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def new_meter() -> ThreadMeter:
    return ThreadMeter() if available() else NullMeter()
