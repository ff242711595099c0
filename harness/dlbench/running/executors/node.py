"""What one Ray task does on its node: the same fresh worker process as a local run, and the node's facts.

This module runs inside a Ray worker on the node. It imports Ray only to ask which node it is on and
to fetch shipped data. The worker process dies with the Ray worker that started it (the kernel's
parent-death signal; a forked one with its fork server, which exits when the Ray worker goes), so a
cancelled task, or a node whose Ray processes are killed, leaves no case running unseen.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from pathlib import Path
from typing import Any

LOG_LIMIT = 1 << 20  # the last MiB of a worker's output travels back to the driver's run folder


def run_on_node(job: dict[str, Any]) -> dict[str, Any]:
    """Run one case here; returns the worker's outcome, the node's machine facts, where the data came from.

    ``job``: case (a ``Case``), options (``RunOptions``), timeout, env (variables forwarded from the
    driver), shipment (a list holding the ObjectRef of the driver's arrays, or empty). The worker's log,
    and the extra logs it writes beside it (``worker.loadgen/``), travel back as text.
    """
    import ray

    from dlbench.data import task_status
    from dlbench.data import shipping
    from dlbench.machine import identity
    from dlbench.running.launch import run_worker

    node_id = ray.get_runtime_context().get_node_id()
    case, options = job["case"], job["options"]
    environment = _environment(options.threads)
    with tempfile.TemporaryDirectory(prefix="dlbench-node-") as tmp:
        extra: dict[str, Any] = {}
        origin = "node"
        if not task_status(case.task, options.data_dir).found and job["shipment"]:
            extra["shipped_data"] = str(shipping.write_shipment(ray.get(job["shipment"][0]), Path(tmp)))
            origin = "driver"
        log_path = Path(tmp) / "worker.log"
        started = time.monotonic()
        outcome = run_worker(case, options, job["timeout"], log_path, _launcher(options, job["env"]), extra=extra)
        wall_s = time.monotonic() - started
        log_text = _read_tail(log_path)
        extra_logs = {str(path.relative_to(tmp)): _read_tail(path) for path in sorted(Path(tmp).glob("worker.*/**/*"))
                      if path.is_file()}
    if isinstance(outcome.get("data"), dict):
        outcome["data"]["origin"] = origin
    return {"outcome": outcome, "wall_s": wall_s, "log": log_text, "extra_logs": extra_logs, "env": environment,
            "machine": identity.facts(environment, node_id), "data_origin": origin}


@functools.lru_cache(maxsize=4)
def _environment(threads: int) -> dict[str, Any]:
    """This node's facts (a local run's ``env``: machine, settings, measured peak), once per Ray worker process."""
    from dlbench.machine import identity
    from dlbench.machine.peak import run_facts

    return {**identity.capture(), **run_facts(threads)}


_LAUNCHERS: dict[tuple, Any] = {}


def _launcher(options: Any, env: dict[str, str]) -> Any:
    """This Ray worker process's launcher for the driver's options and forwarded variables, kept across its
    tasks so its fork servers are too (with one case at a time on a node, one server per node and framework).
    Its workers die with this process: a spawned one by the kernel's parent-death signal, a forked one with
    its fork server, which exits when this process's end of its socket closes."""
    from dlbench.running.launcher import make_launcher

    key = (options.threads, options.verbose, options.environment, getattr(options, "launch", None),
           tuple(sorted(env.items())))
    if key not in _LAUNCHERS:
        _LAUNCHERS[key] = make_launcher(options, pin=False, extra_env=env, die_with_parent=True)
    return _LAUNCHERS[key]


def _read_tail(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - LOG_LIMIT))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
