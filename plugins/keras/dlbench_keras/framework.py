"""The Keras framework object: what can run here, and how to build one case.

Nothing here imports keras, tensorflow, torch or jax at module level: ``dlbench list`` must stay fast,
and the backend can only be chosen (``KERAS_BACKEND``) before keras is first imported, inside the
worker process that runs the case.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Sequence

from dlbench import FrameworkUnavailable, Setup
from dlbench_keras.models import ACTIVATIONS, BUILDERS

if TYPE_CHECKING:
    from dlbench import DeviceCheck, ModelSpec

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
    precision: str = "float32"  # the Keras dtype policy: "float32" or "mixed_bfloat16"
    tuned: bool = False  # predict as the Keras/TF guides recommend (dlbench_keras.tuned)


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("fit", "tensorflow", "fit", False),  # first = default: model.fit, as the tutorials do
        Variant("custom", "tensorflow", "custom", False),
        Variant("fit-xla", "tensorflow", "fit", True),
        Variant("custom-xla", "tensorflow", "custom", True),
        Variant("tuned", "tensorflow", "fit", False, tuned=True),
        Variant("mixed-bf16", "tensorflow", "fit", False, "mixed_bfloat16"),  # bf16 compute, float32 weights
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
        return [d for d in ("cpu", "gpu") if any(c.device == d and c.available for c in self.device_checks())]

    def device_checks(self) -> "list[DeviceCheck]":
        """The CPU, and the GPU as each installed backend sees it (or why not); no framework imported here."""
        from dlbench import DeviceCheck, cpu_model

        backends = dict.fromkeys(VARIANTS[name].backend for name in self.variants())
        return [DeviceCheck("cpu", True, cpu_model())] + [_backend_gpu(backend) for backend in backends]

    def supports(self, spec: "ModelSpec") -> bool:
        """Whether the builder's dispatch tables (dlbench_keras.models) cover every layer and activation."""
        return not spec.missing(BUILDERS, ACTIVATIONS)

    def prepare(self, setup: Setup) -> "KerasSession":
        from dlbench_keras.session import KerasSession

        variant = get_variant(setup.variant)
        if variant.name not in self.variants():
            raise FrameworkUnavailable(f"variant {variant.name!r} needs the {variant.backend} package; "
                                       f"pip install {variant.backend}")
        return KerasSession(setup, variant)


def _backend_gpu(backend: str) -> "DeviceCheck":
    """The GPU as one Keras backend's framework sees it, asked in a child process (dlbench.devices)."""
    from dlbench import jax_gpu, tensorflow_gpu, torch_gpu

    check = {"tensorflow": tensorflow_gpu, "torch": torch_gpu, "jax": jax_gpu}[backend]()
    return dataclasses.replace(check, backend=backend)
