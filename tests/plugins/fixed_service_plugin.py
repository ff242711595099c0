"""A framework whose ``predict`` takes a known, fixed service time: LoadGen's numbers become arithmetic.

Loaded with ``DLBENCH_PLUGINS=fixed_service_plugin``. A call to ``predict`` on a batch of n samples costs
a + b * n: ``CALL_MS + n * SAMPLE_MS`` milliseconds (``FIXED_SERVICE_CALL_MS`` / ``FIXED_SERVICE_SAMPLE_MS``
in the environment override them; ``FIXED_SERVICE_FAIL_AFTER=N`` makes every call after the N-th raise),
held by sleeping most of it and spinning the last fraction of a millisecond so that the time is exact
without burning a core. With one query served at a time (``--serve single``) the Server scenario is an
M/D/1 queue and its QPS and latency percentiles follow from queueing theory; with ``--serve batched`` it is a
batch-service queue whose per-call cost a makes batching pay (tests/test_loadgen_server.py).
"""

from __future__ import annotations

import os
import time
from typing import Any, Mapping, Optional, Sequence

from dlbench.contract import BlockHook, Setup
from dlbench.hookspecs import hookimpl

CALL_MS = float(os.environ.get("FIXED_SERVICE_CALL_MS", "1.0"))
SAMPLE_MS = float(os.environ.get("FIXED_SERVICE_SAMPLE_MS", "0.002"))
FAIL_AFTER = int(os.environ.get("FIXED_SERVICE_FAIL_AFTER", "0"))  # > 0: predict raises after this many calls
TRAIN_STEP_MS = 1.0
SPIN_S = 0.0003  # the last part of every wait is spun: sleep() wakes up late by tens of microseconds


def hold(seconds: float) -> None:
    """Return exactly ``seconds`` after the call (to the clock's resolution)."""
    deadline = time.perf_counter() + seconds
    if seconds > SPIN_S:
        time.sleep(seconds - SPIN_S)
    while time.perf_counter() < deadline:
        pass


def service_s(samples: int) -> float:
    return (CALL_MS + samples * SAMPLE_MS) / 1000.0


class FixedSession:
    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.steps = 0
        self.predictions = 0

    def param_count(self) -> int:
        return self.setup.spec.param_count(self.setup.data.input_shape)

    def train(self, steps: int, hook: Optional[BlockHook] = None) -> None:
        for index in range(steps):
            hold(TRAIN_STEP_MS / 1000.0)
            self.steps += 1
            if hook is not None and (index + 1) % hook.steps == 0:
                hook()

    def evaluate(self, x: Any, y: Any) -> tuple[float, float]:
        import math

        classes = self.setup.data.num_classes
        return math.log(2.0 if self.setup.spec.outputs == 1 else classes), 0.5

    def stage(self, x: Any) -> Any:
        return x

    def predict(self, staged: Any) -> Any:
        self.predictions += 1
        if FAIL_AFTER and self.predictions > FAIL_AFTER:
            raise RuntimeError(f"the fixed-service framework fell over in predict call {self.predictions}")
        hold(service_s(len(staged)))
        return staged

    def sync(self) -> None:
        pass

    def describe(self) -> Mapping[str, Any]:
        return {"threads": "not applicable (no tensor library)", "precision": "none",
                "sync": "predict is synchronous", "service_ms": f"{CALL_MS:g} + {SAMPLE_MS:g} per sample"}


class FixedServiceFramework:
    name = "fixed"

    def version(self) -> str:
        return "1.0"

    def variants(self) -> Sequence[str]:
        return ("exact",)

    def devices(self) -> Sequence[str]:
        return ["cpu"]

    def supports(self, spec: Any) -> bool:
        return spec.modality == "image"

    def prepare(self, setup: Setup) -> FixedSession:
        return FixedSession(setup)


@hookimpl
def dlbench_register_frameworks(register: Any) -> None:
    register(FixedServiceFramework())
