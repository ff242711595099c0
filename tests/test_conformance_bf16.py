"""Every reduced-precision variant through the conformance kit on the CPU, so that what broke the first GPU
run (a bfloat16 prediction the kit could not read, a precision the fairness profile refused) fails in CI.

Second suites of their plugins: ``session_tests_only`` skips what the default-variant suites already prove
(discovery, the cheap questions, the thread budget), and a small model set keeps them to seconds. An LSTM the
CPU has no bfloat16 kernel for (oneDNN on AVX2-only CPUs) is skipped with the plugin's reason; see
tests/test_bf16_recurrence.py for that machine, reproduced with ONEDNN_MAX_CPU_ISA=AVX2.
"""

from __future__ import annotations

import importlib.util

import pytest

from dlbench.testing import FrameworkConformance


def _missing(*modules: str) -> bool:
    return any(importlib.util.find_spec(m) is None for m in modules)


@pytest.mark.skipif(_missing("torch"), reason="torch is not installed")
class TestPytorchAmpBf16(FrameworkConformance):
    framework = "pytorch"
    variant = "amp-bf16"
    models = ("mlp", "lstm")
    session_tests_only = True


@pytest.mark.skipif(_missing("dlbench_jax", "jax", "flax", "optax"), reason="the JAX plugin is not installed")
class TestJaxBf16(FrameworkConformance):
    framework = "jax"
    variant = "bf16"
    models = ("mlp",)  # its bfloat16 LSTM, state included, is checked in tests/test_gpu_paths.py
    session_tests_only = True


@pytest.mark.skipif(_missing("keras", "tensorflow"), reason="keras on TensorFlow is not installed")
class TestKerasMixedBf16(FrameworkConformance):
    framework = "keras"
    variant = "mixed-bf16"
    models = ("mlp",)
    session_tests_only = True
    threads = 2  # TensorFlow's pools are sized once per process: the budget of the other Keras suites
