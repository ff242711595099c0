"""The zoo under pytest-benchmark: pick cases with options (or the ``dlbench`` marker).

    pytest benchmarks/ --benchmark-only --dlbench-model cnn --dlbench-framework pytorch

Options are repeatable; without them every registered framework (default variant) runs every zoo
model it supports, on the synthetic task of the model's modality. Frameworks come from the public
plugin registry, exactly as ``dlbench run`` finds them; a framework that is not installed is skipped.
``pytest`` from the repository root does not come here (testpaths = tests).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

import pytest

@dataclass(frozen=True)
class ZooCase:
    framework: str
    variant: Optional[str]  # None: the framework's default, resolved once it is known to be installed
    model: str
    task: Optional[str]  # None: the synthetic task of the model's modality
    device: str

    @property
    def id(self) -> str:
        return "-".join(str(part) for part in (self.framework, self.variant or "default", self.model,
                                                 self.task or "synthetic", self.device))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dlbench", "dlbench zoo benchmarks (benchmarks/)")
    group.addoption("--dlbench-framework", action="append", default=[], metavar="NAME",
                    help="repeatable; default: every registered framework")
    group.addoption("--dlbench-model", action="append", default=[], metavar="NAME",
                    help="repeatable; default: every zoo model")
    group.addoption("--dlbench-task", action="append", default=[], metavar="NAME",
                    help="repeatable; default: synthetic_images / synthetic_text by the model's modality")
    group.addoption("--dlbench-variant", action="append", default=[], metavar="NAME",
                    help="repeatable; default: each framework's default variant")
    group.addoption("--dlbench-device", default="cpu", help="cpu (default) or gpu")
    group.addoption("--dlbench-batch-size", type=int, default=64)
    group.addoption("--dlbench-steps", type=int, default=20, help="training steps in one timed round")
    group.addoption("--dlbench-rounds", type=int, default=5, help="timed rounds")
    group.addoption("--dlbench-threads", type=int, default=os.cpu_count() or 1)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dlbench(framework=..., model=..., task=..., variant=...): pin a zoo "
                                       "benchmark to these values (each a name or a list of names)")


def _names(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "zoo_case" not in metafunc.fixturenames:
        return
    from dlbench.plugins.registry import load_registry
    from dlbench.zoo import MODELS

    option = metafunc.config.getoption
    marker = metafunc.definition.get_closest_marker("dlbench")
    pinned = marker.kwargs if marker else {}
    frameworks = option("dlbench_framework") or _names(pinned.get("framework")) or sorted(load_registry().frameworks)
    models = option("dlbench_model") or _names(pinned.get("model")) or list(MODELS)
    tasks = option("dlbench_task") or _names(pinned.get("task")) or [None]
    variants = option("dlbench_variant") or _names(pinned.get("variant")) or [None]
    cases = [ZooCase(fw, variant, model, task, option("dlbench_device"))
             for fw in frameworks for variant in variants for model in models for task in tasks]
    if not cases:  # no framework registered at all: one case that skips and says so
        cases = [ZooCase("none", None, models[0] if models else "cnn", None, option("dlbench_device"))]
    metafunc.parametrize("zoo_case", cases, ids=[case.id for case in cases])


@pytest.fixture(scope="session")
def zoo_registry():
    from dlbench.plugins.registry import load_registry

    return load_registry()


@pytest.fixture(scope="session")
def zoo_data():
    """Task arrays loaded once per pytest session (every framework gets the same ones)."""
    from dlbench.data import load_task

    cache: dict[str, Any] = {}

    def get(task: str):
        if task not in cache:
            cache[task] = load_task(task, seed=0)
        return cache[task]

    return get


@pytest.fixture
def zoo_settings(request: pytest.FixtureRequest) -> dict[str, int]:
    option = request.config.getoption
    return {"batch_size": option("dlbench_batch_size"), "steps": option("dlbench_steps"),
            "rounds": option("dlbench_rounds"), "threads": option("dlbench_threads")}
