"""Test kits for plugin authors.

``FrameworkConformance`` is the conformance suite every framework plugin must pass: subclass it in a
``test_*.py`` file as ``class TestMyFramework(FrameworkConformance): framework = "myfw"`` and run pytest.
Importing this package imports pytest (a test dependency), never a framework.
"""

from dlbench.testing.conformance import DEFAULT_MODELS, FrameworkConformance
from dlbench.testing.experiments import random_setup, random_task
from dlbench.testing.probes import CountingHook, clock_guard

__all__ = ["DEFAULT_MODELS", "CountingHook", "FrameworkConformance", "clock_guard", "random_setup", "random_task"]
