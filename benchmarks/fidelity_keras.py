"""Fidelity of the keras plugin: does dlbench measure what plain Keras achieves?

    python benchmarks/fidelity_keras.py [--pairs 4] [--models cnn,mlp,lstm] [--loop tutorial|script]
        [--environment dlbench|user] [--threads N] [--steps mlp=1500] [--json PATH]

A = ``dlbench run -f keras``, B = ``benchmarks/tutorial_keras.py`` (the keras.io examples' way: one
``model.fit`` over consecutive slices, softmax outputs, ``optimizer="adam"``) or, with ``--loop script``,
``benchmarks/plain_keras.py`` (``model.fit`` on shuffled full batches, ``predict_on_batch`` on a staged tensor
as dlbench's Offline), A B B A in fresh processes, in dlbench's environment or a user's.
benchmarks/fidelity_protocol.py says what is compared and when it passes; docs/fidelity.md has the measurements.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fidelity_protocol import main, tutorial_options

HERE = Path(__file__).resolve().parent

# model -> (task, training steps): about 5-10 s of training each on one idle core
CASES = {"cnn": ("fashion_mnist", 300), "mlp": ("fashion_mnist", 1000), "lstm": ("synthetic_text", 40)}


def plain_command(args: argparse.Namespace, model: str, task: str, steps: int) -> list[str]:
    command = [sys.executable, str(HERE / f"{args.loop if args.loop == 'tutorial' else 'plain'}_keras.py"), model,
               "--steps", str(steps), "--threads", str(args.threads), "--batch-size", str(args.batch)]
    return command + (tutorial_options(args) if args.loop == "tutorial" else [])


if __name__ == "__main__":
    sys.exit(main("keras", CASES, plain_command))
