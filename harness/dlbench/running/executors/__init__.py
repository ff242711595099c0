"""Where cases run: ``local`` (one at a time on this machine, the default) or ``ray`` (over a Ray cluster).

Both start the same fresh worker process per case and let the harness own the clock; they differ only
in where that process runs and how many run at once. Ray is imported only by ``make_executor("ray")``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlbench.errors import UnknownName
from dlbench.running.executors.base import Executor, Finished, Job

if TYPE_CHECKING:
    from dlbench.running.options import RunOptions

EXECUTORS = ("local", "ray")


def make_executor(options: "RunOptions", environment: dict[str, Any]) -> Executor:
    """The executor ``options.executor`` names; for ray, connected (UsageError in one line if it cannot be)."""
    name = getattr(options, "executor", "local") or "local"
    if name == "local":
        from dlbench.running.executors.local import LocalExecutor

        return LocalExecutor(options, environment)
    if name == "ray":
        from dlbench.running.executors.raycluster import RayExecutor

        return RayExecutor(options, environment)
    raise UnknownName("executor", name, EXECUTORS)


__all__ = ["EXECUTORS", "Executor", "Finished", "Job", "make_executor"]
