"""The whole plugin contract: one hook.

A plugin module (found through the ``dlbench`` entry-point group) implements
``dlbench_register_frameworks`` and passes one or more framework objects to ``register``.
What such an object must provide is spelled out in :mod:`dlbench.contract`.
"""

from __future__ import annotations

from typing import Callable

import pluggy

from dlbench.contract import Framework

hookspec = pluggy.HookspecMarker("dlbench")
hookimpl = pluggy.HookimplMarker("dlbench")


@hookspec
def dlbench_register_frameworks(register: Callable[[Framework], None]) -> None:
    """Register the frameworks this plugin benchmarks.

    :param register: call it once per framework object (see ``dlbench.contract.Framework``).
        The harness records which plugin registered which framework and rejects duplicate names.
    Importing the framework itself (torch, tensorflow, ...) must wait until ``prepare``.
    """
