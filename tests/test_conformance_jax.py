"""The dlbench-jax plugin (plugins/jax, its own distribution) passes the conformance kit."""

from __future__ import annotations

import importlib.util

import pytest

from dlbench.testing import FrameworkConformance

MISSING = [name for name in ("dlbench_jax", "jax", "flax", "optax") if importlib.util.find_spec(name) is None]


@pytest.mark.skipif(bool(MISSING), reason=f"not installed: {', '.join(MISSING)} "
                    "(pip install jax flax optax && pip install -e plugins/jax --no-deps)")
class TestJaxConformance(FrameworkConformance):
    framework = "jax"
    distribution = "dlbench-jax"
