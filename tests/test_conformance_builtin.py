"""The built-in plugins pass the conformance kit that third-party plugins run (dlbench.testing)."""

from __future__ import annotations

import importlib.util

import pytest

from dlbench.testing import FrameworkConformance


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
class TestPytorchConformance(FrameworkConformance):
    framework = "pytorch"
    distribution = "dlbench"


@pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="keras is not installed")
class TestKerasConformance(FrameworkConformance):
    framework = "keras"
    distribution = "dlbench"
    # Keras' LSTM costs ~30 s here (three sessions of TF-traced training); tests/test_plugin_keras.py trains
    # it and checks its spatial dropout. Its parameter count is still checked with every zoo model.
    models = ("softmax", "mlp", "cnn")
    # TensorFlow sizes its thread pools once per process and the plugin refuses a session whose budget
    # differs from the one in force, so this shares the budget of tests/test_plugin_keras.py.
    threads = 2
