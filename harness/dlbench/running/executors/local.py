"""The default executor: one case at a time on this machine, each in a fresh worker process."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from dlbench.running.executors.base import Announce, Finished, Job, attempt_log, now_iso
from dlbench.machine import identity
from dlbench.machine.environment import describe, worker_cpus

if TYPE_CHECKING:
    from dlbench.running.rundir import RunDir
    from dlbench.running.options import RunOptions


class LocalExecutor:
    name = "local"

    def __init__(self, options: "RunOptions", environment: dict[str, Any]) -> None:
        self.options = options
        self.machine = identity.facts(environment)
        self.worker_environment = describe(worker_cpus(options.threads, environment=options.environment),
                                           environment=options.environment)  # pinned as the launcher pins
        self.launcher: Any = None

    def run(self, jobs: Sequence[Job], timeout: float, run_dir: "RunDir", announce: Announce) -> Iterator[Finished]:
        from dlbench.running.launch import run_worker
        from dlbench.running.launcher import make_launcher

        self.launcher = make_launcher(self.options, pin=True, log_dir=run_dir.logs)
        self.launcher.plan([job.case for job in jobs])
        for job in jobs:
            announce(job, "")
            started_at, started = now_iso(), time.monotonic()
            log_path = attempt_log(run_dir, job)
            outcome = run_worker(job.case, self.options, timeout, log_path, self.launcher)  # ^C kills the worker
            self.launcher.done(job.case)  # after its server's last case, the server's memory is given back
            if isinstance(outcome.get("data"), dict):
                outcome["data"]["origin"] = "local"
            executor = {"name": self.name, "packed": False, "num_cpus": self.options.threads,
                        "num_gpus": int(job.case.device == "gpu")}
            yield Finished(job, outcome, time.monotonic() - started, started_at, log_path, self.machine, executor)

    def close(self) -> None:
        if self.launcher is not None:
            self.launcher.close()
