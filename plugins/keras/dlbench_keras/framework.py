"""The Keras framework object: what can run here, and how to build one case.

Nothing here imports keras, tensorflow, torch or jax at module level: ``dlbench list`` must stay fast,
and the backend can only be chosen (``KERAS_BACKEND``) before keras is first imported, inside the
worker process that runs the case.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
from importlib import metadata
from typing import TYPE_CHECKING, Optional, Sequence

from dlbench import FrameworkUnavailable, Preload, Setup
from dlbench_keras.models import ACTIVATIONS, BUILDERS
from dlbench_keras.variants import VARIANTS, get_variant

if TYPE_CHECKING:
    from dlbench import DeviceCheck, ModelSpec

    from dlbench_keras.session import KerasSession

INSTALL_HINT = "pip install 'dlbench[keras]'"
BACKEND_MODULES = {"tensorflow": "tensorflow", "torch": "torch", "jax": "jax"}


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


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

    def preload(self, variant: str, device: str) -> Optional[Preload]:
        """Keras on the variant's backend (one server per backend; per device on torch, whose device Keras
        reads when imported), except jax: its thread budget must be in the environment before jax is first
        imported, which happens in ``prepare``."""
        backend = VARIANTS[variant].backend if variant in VARIANTS else None
        if backend not in ("tensorflow", "torch") or variant not in self.variants():
            return None
        key = backend if backend == "tensorflow" else f"{backend}-{device}"
        return Preload(key, functools.partial(_preload, backend, device))

    def prepare(self, setup: Setup) -> "KerasSession":
        from dlbench_keras.session import KerasSession

        variant = get_variant(setup.variant)
        if variant.name not in self.variants():
            raise FrameworkUnavailable(f"variant {variant.name!r} needs the {variant.backend} package; "
                                       f"pip install {variant.backend}")
        return KerasSession(setup, variant)


def _preload(backend: str, device: str) -> None:
    from dlbench_keras import runtime

    runtime.preload(backend, device)
    import dlbench_keras.session  # noqa: F401


def _backend_gpu(backend: str) -> "DeviceCheck":
    """The GPU as one Keras backend's framework sees it, asked in a child process (dlbench.machine.devices)."""
    from dlbench import jax_gpu, tensorflow_gpu, torch_gpu

    check = {"tensorflow": tensorflow_gpu, "torch": torch_gpu, "jax": jax_gpu}[backend]()
    return dataclasses.replace(check, backend=backend)
