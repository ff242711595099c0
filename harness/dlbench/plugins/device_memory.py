"""Peak device memory as each framework counts it, written once for every plugin that runs on a GPU.

A session offers ``peak_device_memory_mb()`` and ``reset_peak_device_memory() -> bool`` (the harness records
training's and inference's peaks apart, docs/gpu.md). Each framework has its own counter; the plugins
reach them through ``dlbench.device_memory(setup.device, framework_module)``, which takes the already
imported module (the core never imports a framework) and answers None on the CPU, where peak RSS covers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

MIB = 2**20


@dataclass(frozen=True)
class DeviceMemory:
    """One framework's device-memory counter: ``peak_mb`` since the last reset; ``reset`` -> whether it could."""

    read_peak: Callable[[], Optional[float]]  # bytes
    clear: Optional[Callable[[], Any]]  # None where the framework has no reset (JAX)
    how: str

    def peak_mb(self) -> Optional[float]:
        peak = self.read_peak()
        return None if peak is None else peak / MIB

    def reset(self) -> bool:
        if self.clear is None:
            return False  # the peak stays the process's: training's and inference's are not apart
        self.clear()
        return True


def device_memory(device: str, framework: Any) -> Optional[DeviceMemory]:
    """The counter of ``framework`` (the imported ``torch``, ``tensorflow`` or ``jax`` module) on a GPU case;
    None for a CPU case. Keras on a backend passes the backend's module."""
    if device != "gpu":
        return None
    name = framework.__name__.split(".")[0]
    if name == "torch":
        cuda = framework.cuda
        return DeviceMemory(cuda.max_memory_allocated, cuda.reset_peak_memory_stats,
                            "torch.cuda.max_memory_allocated / reset_peak_memory_stats")
    if name == "tensorflow":
        experimental = framework.config.experimental
        return DeviceMemory(lambda: experimental.get_memory_info("GPU:0")["peak"],
                            lambda: experimental.reset_memory_stats("GPU:0"),
                            'tf.config.experimental.get_memory_info("GPU:0")["peak"] / reset_memory_stats')
    if name == "jax":
        gpu = framework.devices()[0]

        def peak() -> Optional[float]:
            stats = gpu.memory_stats() or {}
            return stats.get("peak_bytes_in_use")

        return DeviceMemory(peak, None, 'device.memory_stats()["peak_bytes_in_use"] (no reset)')
    raise ValueError(f"device_memory knows torch, tensorflow and jax, not {name!r}")
