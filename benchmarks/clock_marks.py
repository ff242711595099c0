"""Clock marks for the plain loops the fidelity benchmarks compare dlbench with (benchmarks/fidelity_protocol.py).

After every training step (or inference call) a loop adds a mark: the steps and samples done so far, the wall
clock, the process's CPU clock (all its threads) and its minor page faults. From the marks the fidelity
protocol cuts blocks of exactly as many steps as dlbench's blocks held and applies dlbench's estimator, on
both clocks; the loop itself runs as written. A mark costs about a microsecond (two system calls), under
0.1% of a training step of the models compared.
"""

from __future__ import annotations

import argparse
import resource
import time
from typing import Any, Callable, Iterable


class Marks(list):
    """``[steps, samples, wall s, CPU s, minor faults]`` after each ``add``, cumulative from the first."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = self.samples = 0

    def add(self, steps: int, samples: int) -> None:
        self.steps += steps
        self.samples += samples
        self.append([self.steps, self.samples, time.perf_counter(), time.process_time(),
                     resource.getrusage(resource.RUSAGE_SELF).ru_minflt])

    def whole_rate(self, skip_steps: int = 0) -> float:
        """Samples/s of the wall time from the first mark at ``skip_steps`` steps (a warm-up) to the last: the
        rate a user's script prints."""
        first = next((mark for mark in self if mark[0] >= skip_steps), None)
        if first is None or self[-1][2] <= first[2]:
            return float("nan")
        return (self[-1][1] - first[1]) / (self[-1][2] - first[2])


def marked_steps(train: Callable[[int], None], sync: Callable[[], None], steps: int, every: int,
                 batch_size: int) -> Marks:
    """``steps`` training steps, ``every`` at a time, a mark after each group (after a sync). On the CPU a mark
    after every step (the step has finished); on a device after a sync at a few block boundaries, so the clock
    never interrupts the device's queue inside a block."""
    marks = Marks()
    marks.add(0, 0)
    for done in range(0, steps, every):
        count = min(every, steps - done)
        train(count)
        sync()
        marks.add(count, count * batch_size)
    return marks


def marked_calls(call: Callable[[], Any], seconds: float, samples: int, every: int = 1,
                 sync: Callable[[], None] = lambda: None) -> Marks:
    """Inference as a plain loop does it: 5 calls untimed, then calls for ``seconds``, ``every`` at a time
    (CUDA: a sync after each group keeps the queue short), a mark after each group of ``samples`` each."""
    for _ in range(5):
        call()
    sync()
    marks, start = Marks(), time.perf_counter()
    marks.add(0, 0)
    while time.perf_counter() - start < seconds:
        for _ in range(every):
            call()
        sync()
        marks.add(every, every * samples)
    return marks


def loop_arguments(description: str, models: Iterable[str]) -> argparse.Namespace:
    """The command line of a tutorial loop: MODEL --steps N --threads T --batch-size B --infer-seconds S
    [--order shuffled|slices] [--evaluate-first]."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("model", choices=sorted(models))
    parser.add_argument("--steps", type=int, default=300, help="training steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--infer-seconds", type=float, default=3.0)
    parser.add_argument("--order", choices=["shuffled", "slices"], default="shuffled",
                        help="shuffled: a new order every epoch, as the tutorials train (default); slices: "
                             "consecutive slices, no shuffling (saves the batch gather: 8%% of a PyTorch mlp step)")
    parser.add_argument("--evaluate-first", action="store_true",
                        help="evaluate the held-out 10%% once before training, as a script does after its first "
                             "epoch (with glibc's adaptive malloc that decides a PyTorch CNN's page faults a step; "
                             "the fidelity protocol passes it in the user's environment, where dlbench does the same)")
    return parser.parse_args()
