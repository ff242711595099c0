"""The ``pytorch`` framework object: cheap questions answered without importing torch."""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Sequence

from dlbench import FrameworkUnavailable, Preload, Setup
from dlbench_pytorch.models import ACTIVATIONS, BUILDERS

if TYPE_CHECKING:
    from dlbench import DeviceCheck, ModelSpec

    from dlbench_pytorch.session import TorchSession

INSTALL_HINT = "pip install 'dlbench[torch]'"


class TorchFramework:
    """PyTorch, eager or ``torch.compile``d, on the CPU and (when CUDA works) the GPU."""

    name = "pytorch"

    def version(self) -> str:
        try:
            return metadata.version("torch")
        except metadata.PackageNotFoundError:
            raise FrameworkUnavailable(INSTALL_HINT) from None

    def variants(self) -> Sequence[str]:
        # amp-bf16: eager under torch.autocast(bfloat16); tuned: the performance guides' settings (tuned.py)
        return ["eager", "compile", "tuned", "amp-bf16"]

    def devices(self) -> Sequence[str]:
        return [check.device for check in self.device_checks() if check.available]

    def device_checks(self) -> "list[DeviceCheck]":
        """Each device with what torch sees, or why not (CPU-only build, no driver, ...); torch not imported."""
        from dlbench import DeviceCheck, cpu_model, torch_gpu

        return [DeviceCheck("cpu", True, cpu_model()), torch_gpu()]

    def supports(self, spec: "ModelSpec") -> bool:
        """Whether the builder's dispatch tables (dlbench_pytorch.models, torch not imported) cover the spec."""
        return not spec.missing(BUILDERS, ACTIVATIONS)

    def preload(self, variant: str, device: str) -> Preload:
        """torch, torch._dynamo and this plugin's session module, the same for every variant and device:
        importing them starts no thread and does not initialise CUDA (``prepare`` sizes the pools and picks
        the device). ``torch.compile``'s inductor is left to the compile variant's own cases."""
        return Preload("torch", _import_session)

    def prepare(self, setup: Setup) -> "TorchSession":
        if setup.variant not in self.variants():
            raise ValueError(f"unknown pytorch variant {setup.variant!r}; choose from {', '.join(self.variants())}")
        if setup.device not in ("cpu", "gpu"):
            raise ValueError(f"unknown device {setup.device!r}; choose cpu or gpu")
        self.version()  # FrameworkUnavailable with the install hint, before the bare ImportError
        from dlbench_pytorch.session import TorchSession  # imports torch

        return TorchSession(setup)


def _import_session() -> None:
    import torch._dynamo  # noqa: F401  (torch.optim's constructors import it: 1-4 s of every case's prepare)

    import dlbench_pytorch.session  # noqa: F401  (imports torch)
