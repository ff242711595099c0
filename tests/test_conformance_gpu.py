"""The conformance kit on the GPU: every built-in framework, its reduced-precision and tuned variants, and the
Keras backends that need no TensorFlow GPU build, as GPU suites. On a machine, or a build, without a usable
GPU each suite skips with the framework's own reason (``dlbench list devices``); ``benchmarks/gpu_check.sh``
runs them one per process, side by side (Keras' backend and JAX's GPU memory are per process).

``session_tests_only``: the CPU suites (tests/test_conformance_*.py) prove what does not depend on the device
(discovery, the cheap questions, the thread budget); here only what the GPU changes runs: the sessions'
numbers, sync, the device timer, memory peaks, the fairness profile. ``time_limit``: a hang fails its test
within two minutes, with every thread's stack (the first H200 run's JAX suite printed nothing for 240 s).
"""

from __future__ import annotations

import importlib.util

import pytest

from dlbench.testing import FrameworkConformance


def _missing(*modules: str) -> bool:
    return any(importlib.util.find_spec(m) is None for m in modules)


class GpuSuite(FrameworkConformance):
    device = "gpu"
    session_tests_only = True
    time_limit = 120.0


@pytest.mark.skipif(_missing("torch"), reason="torch is not installed")
class TestPytorchGpu(GpuSuite):
    framework = "pytorch"
    models = ("mlp", "cnn", "lstm")


@pytest.mark.skipif(_missing("torch"), reason="torch is not installed")
class TestPytorchAmpBf16Gpu(GpuSuite):
    framework = "pytorch"
    variant = "amp-bf16"
    models = ("mlp", "cnn", "lstm")


@pytest.mark.skipif(_missing("torch"), reason="torch is not installed")
class TestPytorchTunedGpu(GpuSuite):
    """CUDA graphs (torch.compile mode reduce-overhead) and fused Adam: compiled once per session."""

    framework = "pytorch"
    variant = "tuned"
    models = ("mlp",)
    time_limit = 240.0


@pytest.mark.skipif(_missing("dlbench_jax", "jax", "flax", "optax"), reason="the JAX plugin is not installed")
class TestJaxGpu(GpuSuite):
    framework = "jax"
    models = ("mlp", "cnn")


@pytest.mark.skipif(_missing("dlbench_jax", "jax", "flax", "optax"), reason="the JAX plugin is not installed")
class TestJaxBf16Gpu(GpuSuite):
    framework = "jax"
    variant = "bf16"
    models = ("mlp",)


@pytest.mark.skipif(_missing("keras", "torch"), reason="keras or torch is not installed")
class TestKerasTorchGpu(GpuSuite):
    framework = "keras"
    variant = "torch-fit"
    models = ("mlp",)


@pytest.mark.skipif(_missing("keras", "jax"), reason="keras or jax is not installed")
class TestKerasJaxGpu(GpuSuite):
    framework = "keras"
    variant = "jax-fit"
    models = ("mlp",)
