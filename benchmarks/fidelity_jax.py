"""Fidelity of the jax plugin: does dlbench measure what a plain jitted JAX loop achieves?

    python benchmarks/fidelity_jax.py [--pairs 4] [--models cnn,mlp] [--environment dlbench|user] [--threads N]
        [--scale 1.0] [--device gpu] [--image-task synthetic_images] [--batch-sizes 128,2048] [--json PATH]

A = ``dlbench run -f jax``, B = ``benchmarks/plain_jax.py`` (one ``@jax.jit`` step over a per-epoch
permutation, the training set on the device, a jitted ``apply`` for inference; CPU or GPU), A B B A in fresh
processes. benchmarks/fidelity_protocol.py says what is compared and when it passes (the same protocol as
fidelity_pytorch.py and fidelity_keras.py; JAX has no tutorial loop of its own here, only the plain script).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fidelity_protocol import main

HERE = Path(__file__).resolve().parent

# model -> (task, training steps at batch 128): a few seconds of training each on a CPU core
CASES = {"cnn": ("fashion_mnist", 400), "mlp": ("fashion_mnist", 3000)}


def plain_command(args: argparse.Namespace, model: str, task: str, steps: int) -> list[str]:
    return [sys.executable, str(HERE / "plain_jax.py"), model, "--steps", str(steps), "--threads", str(args.threads),
            "--batch-size", str(args.batch), "--infer-batch-size", str(args.batch), "--task", task,
            "--device", args.device]


if __name__ == "__main__":
    sys.exit(main("jax", CASES, plain_command, devices=("cpu", "gpu"), loops=("script",)))
