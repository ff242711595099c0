"""Fidelity of the jax plugin: does dlbench measure what a plain jitted JAX loop achieves?

    python benchmarks/fidelity_jax.py [--pairs 4] [--models cnn,mlp] [--scale 1.0] [--device gpu]
        [--image-task synthetic_images] [--batch-sizes 128,2048]

The comparison of benchmarks/fidelity_pytorch.py (A B B A, medians, two-sided 0.95..1.053 on the same
estimator both sides), with ``dlbench run -f jax`` against benchmarks/plain_jax.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fidelity_pytorch import main  # noqa: E402

# model -> (task, training steps at batch 128): a few seconds of training each on a CPU core
CASES = {"cnn": ("fashion_mnist", 400), "mlp": ("fashion_mnist", 3000)}

if __name__ == "__main__":
    sys.exit(main("jax", CASES, __doc__.splitlines()[0]))
