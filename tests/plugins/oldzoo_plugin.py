"""A plugin written for the first zoo, which it does not know grew: PyTorch, and the first zoo's twelve layer kinds.

Two frameworks, the two ways such a plugin meets a model it cannot build:

- ``oldzoo`` lists the kinds it knows in ``supports()``, as the built-in plugins did by hand: the planner
  leaves the new models out with a note;
- ``oldzoo_lax`` says yes to every model, and its builder raises on the first layer it does not know, with
  the message the first zoo's torch builder raised (``layer Residual(...) is not supported``): the worker
  records the case as skipped with that reason.

Both build and train the models they know with the pytorch plugin's session. Loaded with
``DLBENCH_PLUGINS=oldzoo_plugin`` (and this folder on PYTHONPATH).
"""

from __future__ import annotations

from typing import Any, Sequence

from dlbench import DeviceCheck, Setup, cpu_model, hookimpl

KNOWN = frozenset({"flatten", "dense", "dropout", "conv2d", "maxpool2d", "batchnorm", "activation", "embedding",
                   "spatial_dropout1d", "conv1d", "maxpool1d", "lstm"})  # the first zoo's, frozen here on purpose


class OldZoo:
    name = "oldzoo"

    def version(self) -> str:
        from importlib import metadata

        return metadata.version("torch")

    def variants(self) -> Sequence[str]:
        return ["eager"]

    def devices(self) -> Sequence[str]:
        return ["cpu"]

    def device_checks(self) -> list:
        return [DeviceCheck("cpu", True, cpu_model())]

    def supports(self, spec: Any) -> bool:
        return all(layer.kind in KNOWN for layer in spec.layers)

    def prepare(self, setup: Setup) -> Any:
        for layer in setup.spec.layers:  # what the first zoo's builder did with a layer it had no branch for
            if layer.kind not in KNOWN:
                raise ValueError(f"{setup.spec.name}: layer {layer!r} is not supported by the pytorch plugin")
        from dlbench_pytorch.session import TorchSession

        return TorchSession(setup)


class OldZooLax(OldZoo):
    name = "oldzoo_lax"

    def supports(self, spec: Any) -> bool:
        return True


@hookimpl
def dlbench_register_frameworks(register: Any) -> None:
    register(OldZoo())
    register(OldZooLax())
