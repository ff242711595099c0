"""Why eager PyTorch loses on a GPU at batch 128: how much work one training step hands the device, one piece
at a time, and how long the device is busy with it.

    python benchmarks/launches_per_step.py [--device cpu|gpu] [--models mlp,cnn,lstm] [--variants eager,tuned]
        [--batch-sizes 128,2048] [--steps 20]

For each case it prepares the pytorch plugin's own session (as ``dlbench run`` does), trains a few warm-up
steps, then counts over ``--steps`` steps:

- operators: the ATen operators dispatched below autograd per step (``TorchDispatchMode``; eager variants):
  on a GPU each becomes one kernel launch or more, whatever the batch;
- on CUDA (``torch.profiler``): kernel launches per step (``cudaLaunchKernel`` and friends), CUDA-graph
  replays (``cudaGraphLaunch``: the tuned variant), the device's kernel time per step, and that time as a
  share of the step's wall time: far under 1, the step waits on the host's launches (overhead-bound).

Prints a table; ``--json PATH`` writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

LAUNCHES = ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernelEx")


def session_for(model: str, variant: str, device: str, batch: int) -> Any:
    from dlbench.contract import Setup
    from dlbench.data import load_task, task_status
    from dlbench.zoo import get_model
    from dlbench_pytorch.framework import TorchFramework

    spec = get_model(model)
    task = "synthetic_text" if spec.modality == "text" else \
        "fashion_mnist" if task_status("fashion_mnist").found else "synthetic_images"
    return TorchFramework().prepare(Setup(spec, load_task(task), device, variant, 0, 1, batch))


def count_operators(session: Any, steps: int) -> float:
    from torch.utils._python_dispatch import TorchDispatchMode

    class Counting(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's signature
            Counting.calls += 1
            return func(*args, **(kwargs or {}))

    with Counting():
        session.train(steps)
    session.sync()
    return Counting.calls / steps


def profile_cuda(session: Any, steps: int) -> dict[str, float]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    session.sync()
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        session.train(steps)
        session.sync()
    wall = time.perf_counter() - start
    events = prof.events()
    launches = sum(1 for e in events if e.name in LAUNCHES)
    graphs = sum(1 for e in events if e.name == "cudaGraphLaunch")
    kernel_us = sum(e.device_time for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    return {"launches_per_step": launches / steps, "graph_replays_per_step": graphs / steps,
            "kernel_ms_per_step": kernel_us / 1000 / steps, "wall_ms_per_step": 1000 * wall / steps,
            "device_busy": kernel_us / 1e6 / wall if wall else float("nan")}


def measure(model: str, variant: str, device: str, batch: int, steps: int) -> dict[str, Any]:
    session = session_for(model, variant, device, batch)
    session.train(3)
    session.sync()
    row: dict[str, Any] = {"model": model, "variant": variant, "device": device, "batch": batch}
    if variant in ("eager", "amp-bf16"):
        row["operators_per_step"] = count_operators(session, steps)
    start = time.perf_counter()
    session.train(steps)
    session.sync()
    row["samples_per_s"] = batch * steps / (time.perf_counter() - start)
    if device == "gpu":
        row.update(profile_cuda(session, steps))
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--models", default="mlp,cnn,lstm")
    parser.add_argument("--variants", default="eager")
    parser.add_argument("--batch-sizes", default="128")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = [measure(model, variant, args.device, int(batch), args.steps)
            for model in args.models.split(",") for variant in args.variants.split(",")
            for batch in args.batch_sizes.split(",")]
    keys = ["model", "variant", "device", "batch", "samples_per_s", "operators_per_step", "launches_per_step",
            "graph_replays_per_step", "kernel_ms_per_step", "wall_ms_per_step", "device_busy"]
    keys = [k for k in keys if any(k in row for row in rows)]
    from tabulate import tabulate

    print(tabulate([[row.get(k, "—") for k in keys] for row in rows], keys, tablefmt="github", floatfmt=".3g"))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
