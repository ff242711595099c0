"""What every executor takes (jobs) and gives back (finished attempts), whatever runs the processes.

The runner owns the record and the run folder; an executor only decides where and when each (case,
repeat) runs its fresh worker process, and reports each attempt as it ends. An attempt that crashed
and will be retried comes back with ``retried`` set, so its record is kept but neither counted as the
case's result nor treated as finished by ``--resume``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Protocol, Sequence

if TYPE_CHECKING:
    from dlbench.running.plan import Case
    from dlbench.running.rundir import RunDir

RETRY_STATUSES = ("crashed",)  # a process or node that died; failures and timeouts would fail again


@dataclass(frozen=True)
class Job:
    """One attempt at one (case, repeat); ``avoid``: nodes where earlier attempts crashed."""

    case: "Case"
    repeat: int
    attempt: int = 0
    avoid: tuple[str, ...] = ()


@dataclass
class Finished:
    """One ended attempt: the worker's part of the record plus where and how it ran."""

    job: Job
    outcome: dict[str, Any]
    wall_s: float
    started_at: str
    log_path: Path
    machine: dict[str, Any]
    executor: dict[str, Any]
    env: Optional[dict[str, Any]] = None  # the node's environment when it is not the driver's
    retried: bool = False

    def record_fields(self) -> dict[str, Any]:
        """What this attempt adds to the runner's base record."""
        fields = {**self.outcome, "wall_s": self.wall_s, "started_at": self.started_at, "machine": self.machine,
                  "executor": self.executor, "attempt": self.job.attempt}
        if self.env is not None:
            fields["env"] = self.env
        if self.retried:
            fields["retried"] = True
        return fields


Announce = Callable[[Job, str], None]  # (job, where it runs) when an attempt starts


class Executor(Protocol):
    name: str
    worker_environment: dict[str, Any]  # allocator and pinning of its workers (machine.environment.describe)

    def run(self, jobs: Sequence[Job], timeout: float, run_dir: "RunDir", announce: Announce) -> Iterator[Finished]:
        """Run every job, yielding each attempt as it ends; KeyboardInterrupt stops what is running."""

    def close(self) -> None:
        """Stop anything still running and let go of the cluster."""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def attempt_log(run_dir: "RunDir", job: Job) -> Path:
    """The log of one attempt: the repeat's usual log, with ``-a<N>`` for retries (the crash log is kept)."""
    path = run_dir.log_path(job.case.id, job.repeat)
    return path if job.attempt == 0 else path.with_name(f"{path.stem}-a{job.attempt}{path.suffix}")

