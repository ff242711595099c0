"""A plugin that looks for what an earlier case could have left behind, then leaves it behind itself.

Loaded with ``DLBENCH_PLUGINS=probe_plugin``. Its framework ``probe`` preloads a module (as a real plugin
preloads its framework) and, in ``prepare``, records what the case's process sees before it touches
anything: the module's global list of earlier cases, an environment variable, the threads of the process,
the first draws of Python's and numpy's global RNGs, its CPUs, its thread and allocator variables, its
process and session ids, its command line and resident memory. Then it leaves a mark in each (appends to the list, sets the variable, starts a
thread, draws from both RNGs) so that a case forked from a process that had run it would see them.

Variant ``threaded``: its preload starts a thread, which a fork server must refuse (its cases are spawned).
"""

from __future__ import annotations

import os
import random
import threading
import time
from typing import Any, Mapping, Optional, Sequence

from dlbench import Preload, Setup, hookimpl

from fake_plugins import FakeSession

MARK = "DLBENCH_PROBE_LEFT_BY"


def _preload_state() -> None:
    import numpy  # noqa: F401  (the worker imports it anyway)

    import probe_state  # noqa: F401  (a module of globals, as a framework's would be)


def _preload_with_a_thread() -> None:
    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()


class ProbeSession(FakeSession):
    def __init__(self, setup: Setup, seen: dict[str, Any]) -> None:
        super().__init__(setup)
        self.seen = seen

    def describe(self) -> Mapping[str, Any]:
        return {**super().describe(), "probe": self.seen}


class ProbeFramework:
    name = "probe"

    def version(self) -> str:
        return "1.0"

    def variants(self) -> Sequence[str]:
        return ["sleep", "threaded"]

    def devices(self) -> Sequence[str]:
        return ["cpu"]

    def supports(self, spec: Any) -> bool:
        return True

    def preload(self, variant: str, device: str) -> Optional[Preload]:
        if variant == "threaded":
            return Preload("threaded", _preload_with_a_thread)
        return Preload("state", _preload_state)

    def prepare(self, setup: Setup) -> ProbeSession:
        import numpy as np

        import probe_state

        seen = {"earlier_cases": list(probe_state.CASES), "mark": os.environ.get(MARK),
                "threads": len(os.listdir("/proc/self/task")), "random": random.random(),
                "numpy_random": float(np.random.random()), "cpus": sorted(os.sched_getaffinity(0)),
                "env": {k: v for k, v in os.environ.items() if k.endswith("_NUM_THREADS") or k.startswith("MALLOC_")
                        or k.startswith("TF_NUM_")},
                "pid": os.getpid(), "ppid": os.getppid(), "sid": os.getsid(0), "pgid": os.getpgid(0),
                "imported_by": probe_state.LOADED_BY, "cmdline": _command_line(), "memory_kb": _memory()}
        probe_state.CASES.append(f"{setup.spec.name}/{setup.variant}")
        os.environ[MARK] = setup.spec.name
        threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
        return ProbeSession(setup, seen)


def _memory() -> dict[str, int]:
    """Resident memory now, from /proc/self/status: all of it, anonymous, file-backed (libraries)."""
    with open("/proc/self/status") as handle:
        return {line.split(":")[0]: int(line.split()[1]) for line in handle
                if line.startswith(("VmRSS:", "RssAnon:", "RssFile:"))}


def _command_line() -> list[str]:
    with open("/proc/self/cmdline", "rb") as handle:
        return [word.decode() for word in handle.read().split(b"\0") if word]


@hookimpl
def dlbench_register_frameworks(register: Any) -> None:
    register(ProbeFramework())
