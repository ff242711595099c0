"""The Keras framework object: what can run here, and how to build one case.

Nothing here imports keras, tensorflow, torch or jax at module level: ``dlbench list`` must stay fast,
and the backend can only be chosen (``KERAS_BACKEND``) before keras is first imported, inside the
worker process that runs the case.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Sequence

from dlbench import FrameworkUnavailable, Setup
from dlbench_keras.models import SUPPORTED_KINDS

if TYPE_CHECKING:
    from dlbench import ModelSpec

    from dlbench_keras.session import KerasSession

INSTALL_HINT = "pip install 'dlbench[keras]'"
BACKEND_MODULES = {"tensorflow": "tensorflow", "torch": "torch", "jax": "jax"}


@dataclass(frozen=True)
class Variant:
    """One way to run Keras: which backend, which training loop, XLA or not."""

    name: str
    backend: str  # "tensorflow" | "torch" | "jax"
    loop: str  # "fit" (model.fit) | "custom" (GradientTape step in a tf.function)
    xla: bool  # jit_compile=True


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("fit", "tensorflow", "fit", False),  # first = default: model.fit, as the tutorials do
        Variant("custom", "tensorflow", "custom", False),
        Variant("fit-xla", "tensorflow", "fit", True),
        Variant("custom-xla", "tensorflow", "custom", True),
        Variant("jax-fit", "jax", "fit", False),
        Variant("torch-fit", "torch", "fit", False),
    )
}


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown keras variant {name!r}; choose from {', '.join(VARIANTS)}") from None


class KerasFramework:
    """Keras 3 on its TensorFlow backend (fit, custom loop, each with or without XLA), plus the torch and
    jax backends when those packages are installed."""

    name = "keras"

    def version(self) -> str:
        try:
            version = metadata.version("keras")
        except metadata.PackageNotFoundError:
            raise FrameworkUnavailable(INSTALL_HINT) from None
        if not self.variants():
            raise FrameworkUnavailable(f"keras {version} has no backend installed; {INSTALL_HINT}")
        return version

    def variants(self) -> Sequence[str]:
        return [name for name, v in VARIANTS.items() if _installed(BACKEND_MODULES[v.backend])]

    def devices(self) -> Sequence[str]:
        if not glob.glob("/dev/nvidia*"):
            return ["cpu"]
        return ["cpu", "gpu"] if _tensorflow_sees_gpu() else ["cpu"]

    def supports(self, spec: "ModelSpec") -> bool:
        return all(layer.kind in SUPPORTED_KINDS for layer in spec.layers)

    def prepare(self, setup: Setup) -> "KerasSession":
        from dlbench_keras.session import KerasSession

        variant = get_variant(setup.variant)
        if variant.name not in self.variants():
            raise FrameworkUnavailable(f"variant {variant.name!r} needs the {variant.backend} package; "
                                       f"pip install {variant.backend}")
        return KerasSession(setup, variant)


@functools.lru_cache(maxsize=1)
def _tensorflow_sees_gpu() -> bool:
    """Ask TensorFlow in a child process, so the caller (the planner) never loads TF or initialises CUDA."""
    if not _installed("tensorflow"):
        return False
    code = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
        return out.returncode == 0 and int(out.stdout.strip().splitlines()[-1]) > 0
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return False
