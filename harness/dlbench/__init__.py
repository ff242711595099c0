"""dlbench: a fair, reproducible benchmark harness for deep-learning frameworks.

This module is the public front for plugin authors, as ``pytest`` is over ``_pytest``: a plugin imports
only the names below. Every other module of the package is internal and may change between releases.
The core never imports a framework; plugins do, inside the worker process that runs one case.
"""

from __future__ import annotations

from typing import Any

from dlbench.contract import (BlockHook, Framework, FrameworkUnavailable, Preload, Register, Session, Setup,
                              TaskData)
from dlbench.plugins.device_memory import DeviceMemory, device_memory
from dlbench.plugins.fairness import FairnessProfile, fairness_profile
from dlbench.hookspecs import hookimpl
from dlbench.machine.cpu import cpu_model, gpu_names
from dlbench.machine.devices import (DeviceCheck, distribution_version, gpu_reason, jax_gpu, nvidia_driver, run_probe,
                                     tensorflow_gpu, torch_gpu)
from dlbench.plugins.torch_setup import torch_strict_float32, torch_thread_budget
from dlbench.stream import BatchStream, DeviceOrder, check_batch_size
from dlbench.plugins.jax_setup import jax_thread_budget
from dlbench.version import __version__
from dlbench.zoo import ModelSpec


def __getattr__(name: str) -> Any:
    """The conformance kit imports pytest, so it loads only when a plugin's test suite asks for it."""
    if name == "FrameworkConformance":
        from dlbench.testing import FrameworkConformance

        return FrameworkConformance
    raise AttributeError(f"module 'dlbench' has no attribute {name!r}")


__all__ = [
    "BatchStream",
    "BlockHook",
    "DeviceCheck",
    "DeviceMemory",
    "DeviceOrder",
    "FairnessProfile",
    "Framework",
    "FrameworkConformance",
    "FrameworkUnavailable",
    "ModelSpec",
    "Preload",
    "Register",
    "Session",
    "Setup",
    "TaskData",
    "__version__",
    "check_batch_size",
    "cpu_model",
    "device_memory",
    "distribution_version",
    "fairness_profile",
    "gpu_names",
    "gpu_reason",
    "hookimpl",
    "jax_gpu",
    "jax_thread_budget",
    "nvidia_driver",
    "run_probe",
    "tensorflow_gpu",
    "torch_strict_float32",
    "torch_gpu",
    "torch_thread_budget",
]
