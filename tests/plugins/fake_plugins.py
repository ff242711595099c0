"""A framework plugin for testing the harness itself: no tensor library, known timings, chosen faults.

Loaded with ``DLBENCH_PLUGINS=fake_plugins`` (and this folder on PYTHONPATH). The variant picks the
behaviour, so one plugin covers every fault a real framework can show.
"""

from __future__ import annotations

import ctypes
import math
import mmap
import os
import random
import signal
import subprocess
import time
from typing import Any, Mapping, Optional, Sequence

from dlbench.contract import BlockHook, Setup
from dlbench.hookspecs import hookimpl

STEP_S = 0.002  # every "sleep" step takes this long, so throughput = batch / STEP_S

VARIANTS = ("sleep", "noop", "async", "slow-first-step", "slow-prepare", "abort", "hang", "raise-train",
            "raise-prepare", "bad-params", "nan-loss", "exit", "segfault", "sigkill", "hang-with-child",
            "jittery", "spin", "paging")
# jittery: a step sleeps STEP_S to 3 x STEP_S, drawn for every step, so blocks of a few steps spread ~17% and
# the median's CI stays near 5% within a 1 s cap (a level held for many steps let the adaptive rule stop early
# on a lucky steady stretch; a few discrete levels let equal blocks make a zero-width CI); spin: a step busy-waits STEP_S (CPU-bound, for load tests)
# paging: a step maps PAGING_BYTES, writes every page and unmaps them, as glibc's malloc does a PyTorch CNN's
# activations without dlbench's thresholds (real page faults, whatever the malloc settings)
PAGING_BYTES = 8 << 20


class FakeSession:
    def __init__(self, setup: Setup):
        self.setup = setup
        self.variant = setup.variant
        self.steps_run = 0
        self.pending_s = 0.0  # the 'async' variant queues its work; sync() does it
        self.sync_calls = 0

    def param_count(self) -> int:
        count = self.setup.spec.param_count(self.setup.data.input_shape)
        return count + 1 if self.variant == "bad-params" else count

    def _step(self) -> None:
        if self.variant == "noop":
            return
        if self.variant == "abort" and self.steps_run >= 3:
            os.abort()
        if self.variant == "exit" and self.steps_run >= 3:
            os._exit(3)
        if self.variant == "hang" and self.steps_run >= 3:
            time.sleep(3600)
        if self.variant == "segfault" and self.steps_run >= 3:
            ctypes.string_at(0)  # a real invalid read: the worker dies of SIGSEGV
        if self.variant == "sigkill" and self.steps_run >= 3:
            os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's OOM killer sends
        if self.variant == "hang-with-child" and self.steps_run >= 3:
            child = subprocess.Popen(["sleep", "3600"])  # a helper process of the framework, hung too
            with open(os.environ["FAKE_CHILD_PID_FILE"], "w") as file:
                file.write(str(child.pid))
            time.sleep(3600)
        if self.variant == "raise-train" and self.steps_run >= 3:
            raise RuntimeError("the fake framework fell over in step 3")
        extra = 0.5 if self.variant == "slow-first-step" and self.steps_run == 0 else 0.0
        if self.variant == "jittery":
            extra = 2 * STEP_S * random.random()  # independent, continuous: blocks of a few steps spread ~17%
        if self.variant == "paging":
            region = mmap.mmap(-1, PAGING_BYTES)
            for offset in range(0, PAGING_BYTES, mmap.PAGESIZE):
                region[offset] = 1
            region.close()
        if self.variant == "spin":
            until = time.perf_counter() + STEP_S
            while time.perf_counter() < until:
                pass
            return
        if self.variant == "async":
            self.pending_s += STEP_S + extra
        else:
            time.sleep(STEP_S + extra)

    def train(self, steps: int, hook: Optional[BlockHook] = None) -> None:
        for _ in self.setup.stream.batches(steps, hook):  # the harness's order and hook cadence
            self._step()
            self.steps_run += 1

    def evaluate(self, x: Any, y: Any) -> tuple[float, float]:
        self.sync()
        if self.variant == "nan-loss":
            return math.nan, 0.0
        classes = self.setup.data.num_classes
        loss = math.log(2.0 if self.setup.spec.outputs == 1 else classes)
        return loss, min(1.0, self.steps_run / 100.0)  # "learns" linearly: 100 steps to perfect accuracy

    def stage(self, x: Any) -> Any:
        return x

    def predict(self, staged: Any) -> Any:
        if self.variant != "noop":
            time.sleep(STEP_S / 4)
        return staged

    def sync(self) -> None:
        self.sync_calls += 1
        if self.pending_s:
            time.sleep(self.pending_s)
            self.pending_s = 0.0

    def describe(self) -> Mapping[str, Any]:
        return {"threads": f"not applicable (no tensor library; {self.setup.environment}'s environment)",
                "precision": "none", "sync": "sleep of queued work",
                "pid": os.getpid(), "sync_calls": self.sync_calls}


class FakeFramework:
    name = "fake"

    def version(self) -> str:
        return "1.0"

    def variants(self) -> Sequence[str]:
        return VARIANTS

    def devices(self) -> Sequence[str]:
        return ["cpu"]

    def supports(self, spec: Any) -> bool:
        return spec.name != "cnn_lstm"  # a plugin may implement a subset of the zoo

    def prepare(self, setup: Setup) -> FakeSession:
        if setup.variant == "raise-prepare":
            raise ValueError("cannot build this model")
        if setup.variant == "slow-prepare":
            time.sleep(1.0)
        return FakeSession(setup)


@hookimpl
def dlbench_register_frameworks(register: Any) -> None:
    register(FakeFramework())
