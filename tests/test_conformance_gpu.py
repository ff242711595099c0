"""The conformance kit on the GPU: every built-in framework (and the Keras backends that need no TensorFlow
GPU build) as a GPU suite. On a machine, or a build, without a usable GPU each suite skips with the
framework's own reason (``dlbench list devices``); ``benchmarks/gpu_check.sh`` runs them one per process
(Keras' backend and JAX's GPU memory are per process).
"""

from __future__ import annotations

import importlib.util

import pytest

from dlbench.testing import FrameworkConformance


def _missing(*modules: str) -> bool:
    return any(importlib.util.find_spec(m) is None for m in modules)


@pytest.mark.skipif(_missing("torch"), reason="torch is not installed")
class TestPytorchGpu(FrameworkConformance):
    framework = "pytorch"
    device = "gpu"


@pytest.mark.skipif(_missing("torch"), reason="torch is not installed")
class TestPytorchAmpBf16Gpu(FrameworkConformance):
    framework = "pytorch"
    device = "gpu"
    variant = "amp-bf16"
    models = ("mlp", "cnn", "lstm")


@pytest.mark.skipif(_missing("dlbench_jax", "jax", "flax", "optax"), reason="the JAX plugin is not installed")
class TestJaxGpu(FrameworkConformance):
    framework = "jax"
    device = "gpu"


@pytest.mark.skipif(_missing("keras", "torch"), reason="keras or torch is not installed")
class TestKerasTorchGpu(FrameworkConformance):
    framework = "keras"
    device = "gpu"
    variant = "torch-fit"
    models = ("mlp", "cnn")


@pytest.mark.skipif(_missing("keras", "jax"), reason="keras or jax is not installed")
class TestKerasJaxGpu(FrameworkConformance):
    framework = "keras"
    device = "gpu"
    variant = "jax-fit"
    models = ("mlp", "cnn")
