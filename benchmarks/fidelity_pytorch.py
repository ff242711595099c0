"""Fidelity of the pytorch plugin: does dlbench measure what a plain PyTorch loop achieves?

    python benchmarks/fidelity_pytorch.py [--pairs 4] [--models cnn,mlp,lstm] [--loop tutorial|script]
        [--environment dlbench|user] [--threads N] [--scale 1.0] [--device gpu --loop script]
        [--image-task synthetic_images] [--json PATH]

A = ``dlbench run -f pytorch``, B = ``benchmarks/tutorial_pytorch.py`` (the tutorials' loop: consecutive
slices, torch's defaults) or, with ``--loop script``, ``benchmarks/plain_pytorch.py`` (dlbench's choices:
a permutation per epoch, Adam eps 1e-7; CUDA too), A B B A in fresh processes, in dlbench's environment or a
user's. benchmarks/fidelity_protocol.py says what is compared and when it passes; docs/fidelity.md has the
measurements.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fidelity_protocol import main, tutorial_options

HERE = Path(__file__).resolve().parent

# model -> (task, training steps): about 5-10 s of training each on one idle core
CASES = {"cnn": ("fashion_mnist", 400), "mlp": ("fashion_mnist", 3000), "lstm": ("synthetic_text", 60)}


def plain_command(args: argparse.Namespace, model: str, task: str, steps: int) -> list[str]:
    common = ["--steps", str(steps), "--threads", str(args.threads), "--batch-size", str(args.batch)]
    if args.loop == "tutorial":
        return [sys.executable, str(HERE / "tutorial_pytorch.py"), model, *common, *tutorial_options(args)]
    return [sys.executable, str(HERE / "plain_pytorch.py"), model, *common, "--infer-batch-size", str(args.batch),
            "--task", task, "--device", "cuda" if args.device == "gpu" else "cpu"]


if __name__ == "__main__":
    sys.exit(main("pytorch", CASES, plain_command, devices=("cpu", "gpu")))
