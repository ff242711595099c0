"""A test plugin for the harness's device-side wiring on a machine without a GPU: its sessions offer the
optional ``device_timer()``, ``peak_device_memory_mb()`` and ``reset_peak_device_memory()``.

Nothing here is a device: the "timer" reads the host clock (variant ``agree``) or claims twice the host
time (variant ``lag``, what a sync() that returned early looks like to CUDA events); the "memory" is a
counter of work done since the last reset. The tests check that the worker pairs, resets and records them.
"""

from __future__ import annotations

import time
from typing import Any, Optional, Sequence

from dlbench.contract import Setup
from dlbench.hookspecs import hookimpl
from fake_plugins import FakeSession


class HostTimer:
    name = "test timer (host clock; not a device)"

    def __init__(self, factor: float) -> None:
        self.factor, self.began = factor, 0.0

    def start(self) -> None:
        self.began = time.perf_counter()

    def stop(self) -> float:
        return self.factor * (time.perf_counter() - self.began)


class TimedSession(FakeSession):
    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        self.timer_factor = 2.0 if setup.variant == "lag" else 1.0
        self.variant = "sleep"  # FakeSession's behaviour: every step sleeps STEP_S
        self.work_since_reset = 0.0

    def _step(self) -> None:
        super()._step()
        self.work_since_reset += 2.0  # "training takes 2 MiB per step"

    def predict(self, staged: Any) -> Any:
        self.work_since_reset += 0.5
        return super().predict(staged)

    def device_timer(self) -> HostTimer:
        return HostTimer(self.timer_factor)

    def peak_device_memory_mb(self) -> Optional[float]:
        return self.work_since_reset

    def reset_peak_device_memory(self) -> bool:
        self.work_since_reset = 0.0
        return True


class TimedFramework:
    name = "timed"

    def version(self) -> str:
        return "1.0"

    def variants(self) -> Sequence[str]:
        return ["agree", "lag"]

    def devices(self) -> Sequence[str]:
        return ["cpu"]

    def supports(self, spec: Any) -> bool:
        return spec.name in ("softmax", "mlp")

    def prepare(self, setup: Setup) -> TimedSession:
        return TimedSession(setup)


@hookimpl
def dlbench_register_frameworks(register: Any) -> None:
    register(TimedFramework())
