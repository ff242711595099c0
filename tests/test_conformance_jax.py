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

    # Open finding (docs/fairness.md): JAX's Python thread keeps dispatching while XLA's threads compute
    # (asynchronous dispatch), and NPROC=2 still ran up to five busy threads: 1.1-1.55 threads runnable on
    # average at --threads 1, 1.85-3.1 at 2, over the slack in some runs. The kit reports it.
    @pytest.mark.parametrize("budget", [pytest.param(b, marks=pytest.mark.xfail(
        reason="JAX keeps more threads runnable than its budget in some runs (docs/fairness.md)", strict=False))
        for b in (1, 2)])
    def test_thread_budget_is_kept(self, kit, budget: int) -> None:
        super().test_thread_budget_is_kept(kit, budget)
