"""dlbench-jax: JAX with Flax (Linen) models and optax, written against dlbench's public contract only.

Cheap to import: jax is imported in ``prepare``, after the thread budget is put into the environment.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from typing import Any, Sequence

from dlbench import DeviceCheck, FrameworkUnavailable, Setup, cpu_model, jax_gpu, jax_thread_budget
from dlbench import hookimpl
from dlbench_jax.layers import ACTIVATIONS, BUILDERS


def _installed(distribution: str) -> bool:
    try:
        metadata.version(distribution)
        return True
    except metadata.PackageNotFoundError:
        return False


class JaxFramework:
    name = "jax"

    def version(self) -> str:
        if not all(_installed(d) for d in ("jax", "jaxlib", "flax", "optax")):
            raise FrameworkUnavailable("pip install dlbench-jax (jax, flax, optax)")
        return metadata.version("jax")

    def variants(self) -> Sequence[str]:
        # bf16: bfloat16 compute, float32 parameters and optimiser; tuned: donated train-state buffers
        return ["jit", "tuned", "bf16"]

    def devices(self) -> Sequence[str]:
        return [check.device for check in self.device_checks() if check.available]

    def device_checks(self) -> list:
        """The CPU, and the GPU as JAX sees it (a CUDA plugin, the driver, jax.devices in a child), or why not."""
        return [DeviceCheck("cpu", True, cpu_model()), jax_gpu()]

    def supports(self, spec: Any) -> bool:
        """Whether the dispatch tables of dlbench_jax.layers (jax not imported) cover every layer and activation."""
        return not spec.missing(BUILDERS, ACTIVATIONS)

    def prepare(self, setup: Setup) -> Any:
        if setup.variant not in self.variants():
            raise ValueError(f"unknown jax variant {setup.variant!r}; choose from {', '.join(self.variants())}")
        threads = _budget_threads(setup.threads, setup.device, setup.variant == "tuned")
        from dlbench_jax.session import JaxSession  # imports jax

        return JaxSession(setup, threads)


# tuned on a GPU: JAX's "GPU performance tips" code-generation flag, set before jax makes its GPU client
GPU_TUNED_FLAGS = ("--xla_gpu_triton_gemm_any=true",)


def _budget_threads(threads: int, device: str, tuned: bool = False) -> str:
    """Size XLA's CPU pools and schedule before jax starts (dlbench.jax_thread_budget: NPROC, XLA_FLAGS, no
    async dispatch on the CPU); they are read when its client is made. ``tuned`` on a GPU adds GPU_TUNED_FLAGS."""
    if "jax" not in sys.modules:
        os.environ["JAX_PLATFORMS"] = "cuda" if device == "gpu" else "cpu"
    if not (tuned and device == "gpu") or "jax" in sys.modules:
        return jax_thread_budget(threads, device)
    saved = os.environ.get("XLA_FLAGS")
    os.environ["XLA_FLAGS"] = " ".join(filter(None, [saved, *GPU_TUNED_FLAGS]))
    try:
        return jax_thread_budget(threads, device)
    finally:
        if saved is None:
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = saved


@hookimpl
def dlbench_register_frameworks(register: Any) -> None:
    register(JaxFramework())
