"""The built-in PyTorch plugin, registered through the ``dlbench`` entry point like any third-party one.

Importing this package must stay cheap: torch is imported only when a case is prepared
(``TorchFramework.prepare``), so ``dlbench list`` and the core never pay for it.
"""

from __future__ import annotations

from dlbench import hookimpl

from dlbench_pytorch.framework import TorchFramework

__all__ = ["TorchFramework", "dlbench_register_frameworks"]


@hookimpl
def dlbench_register_frameworks(register) -> None:
    register(TorchFramework())
