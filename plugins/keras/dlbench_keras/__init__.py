"""The built-in Keras plugin: Keras 3 on TensorFlow (fit / custom loop, each with or without XLA), and on
torch or jax when installed. Keras itself is imported only inside ``prepare``, in the case's worker."""

from __future__ import annotations

from dlbench import hookimpl
from dlbench_keras.framework import KerasFramework

__all__ = ["KerasFramework", "dlbench_register_frameworks"]


@hookimpl
def dlbench_register_frameworks(register) -> None:
    register(KerasFramework())
