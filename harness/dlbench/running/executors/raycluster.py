"""``--executor ray``: the matrix fanned out over a Ray cluster, each case a Ray task on a node of its own.

The driver (this process) picks a node for every attempt (``placement``), pins the Ray task there and
asks for the case's resources (``num_cpus`` = the thread budget, ``num_gpus`` = 1 for a GPU case, the
``--node-type`` custom resource), so no two cases share a node's cores unless ``--pack`` is given. On
the node the task starts the same fresh worker process as a local run (``node.run_on_node``). Results
come back as tasks end and the runner appends them at once. A task whose worker process or node dies
is a ``crashed`` record naming the node, and is retried (``--retries``) on another node when one can
take it. Ctrl-C disconnects the driver: Ray kills its tasks' workers, and the case processes die with them.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence

from dlbench.errors import UsageError
from dlbench.machine.environment import describe
from dlbench.running.executors.base import RETRY_STATUSES, Announce, Finished, Job, attempt_log, now_iso
from dlbench.running.executors.placement import Need, Node, describe_missing, pick

if TYPE_CHECKING:
    from dlbench.running.rundir import RunDir
    from dlbench.running.options import RunOptions

INSTALL = "pip install 'dlbench[ray]'"
FORWARDED_ENV = ("DLBENCH_PLUGINS", "DLBENCH_DISABLE_PLUGINS")  # the driver's plugin choice holds on every node
NODE_WAIT_S = 60.0  # how long cases wait for a node that can run them to join before they fail
POLL_S = 0.25


def import_ray() -> Any:
    """Ray, or one line naming the install command."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--executor ray needs Ray, which is not installed here; install it with: {INSTALL}") \
            from None
    return ray


def check_reachable(address: Optional[str], timeout: float = 5.0) -> None:
    """A HOST:PORT cluster address that accepts connections, or one line saying it does not.

    Ray itself retries an unreachable address for minutes, printing as it goes; this answers in seconds.
    """
    if not address or "://" in address or address == "auto":
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray-address {address}: expected HOST:PORT of the cluster's head, as `ray start "
                         "--head` prints it")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise UsageError(f"--ray-address {address}: no Ray cluster answers there ({exc.strerror or exc}); start "
                         "one with `ray start --head` and pass the address it prints") from None


@dataclass
class _Running:
    job: Job
    node: Node
    need: Need
    started_at: str
    started: float
    started_unix: float


class RayExecutor:
    name = "ray"

    def __init__(self, options: "RunOptions", environment: dict[str, Any]) -> None:
        self.ray = import_ray()
        self.options = options
        self.node_options = dataclasses.replace(options, verbose=False)  # the node's output comes back as the log
        self.retries = int(getattr(options, "retries", 1))
        self.pack = bool(getattr(options, "pack", False))
        self.node_type = getattr(options, "node_type", None)
        self.address = getattr(options, "ray_address", None)
        self.dead: set[str] = set()
        self.machines: dict[str, dict[str, Any]] = {}
        self.shipments: dict[str, list] = {}
        self.running: dict[Any, _Running] = {}
        self._connect()
        from dlbench.running.executors.node import run_on_node

        self.remote = self.ray.remote(max_retries=0)(run_on_node)  # retries are ours: on another node, recorded
        self.env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
        self.worker_environment = describe(None, environment=options.environment)  # a node: never pinned

    # -- connecting -------------------------------------------------------------------------------------
    def _connect(self) -> None:
        ray = self.ray
        main = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGTERM) if main else None
        kwargs: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": False}
        if not self.address and not os.environ.get("RAY_ADDRESS"):
            kwargs["include_dashboard"] = False  # a private one-machine cluster, started here
        try:
            if not ray.is_initialized():
                ray.init(address=self.address or None, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"--ray-address {self.address}" if self.address else "--executor ray"
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UsageError(f"{where}: cannot connect to a Ray cluster ({first}); start one with `ray start "
                             "--head` and pass its address, or leave --ray-address out for a private local one") \
                from None
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)  # ray.init replaces it with sys.exit; keep the CLI's
        nodes = self.nodes()
        if self.node_type and not any(n.resources.get(self.node_type, 0) > 0 for n in nodes):
            kinds = sorted({k for n in nodes for k in n.resources if not k.startswith("node:") and k not in
                            ("CPU", "GPU", "memory", "object_store_memory")})
            raise UsageError(f"--node-type {self.node_type}: no node of the cluster has that custom resource "
                             f"(custom resources present: {', '.join(kinds) or 'none'}); start nodes with "
                             f"ray start --resources '{{\"{self.node_type}\": 1}}'")

    def nodes(self) -> list[Node]:
        """The live nodes (minus those this run saw die; Ray may list a dead node as alive for a while)."""
        out = []
        for info in self.ray.nodes():
            if info.get("Alive") and info["NodeID"] not in self.dead:
                out.append(Node(info["NodeID"], str(info.get("NodeManagerHostname", "")),
                                str(info.get("NodeManagerAddress", "")), dict(info.get("Resources") or {})))
        return out

    # -- running ----------------------------------------------------------------------------------------
    def run(self, jobs: Sequence[Job], timeout: float, run_dir: "RunDir", announce: Announce) -> Iterator[Finished]:
        pending = deque(jobs)
        stuck_since: Optional[float] = None
        try:
            while pending or self.running:
                if pending:
                    nodes = self.nodes()
                    self._dispatch(pending, nodes, timeout, announce)
                    if self.running or not pending:
                        stuck_since = None
                    elif stuck_since is None:
                        stuck_since = time.monotonic()
                    elif time.monotonic() - stuck_since > NODE_WAIT_S:  # nothing can run, nothing will end
                        while pending:
                            yield self._unplaceable(pending.popleft(), nodes, run_dir)
                        continue
                if not self.running:
                    time.sleep(POLL_S * 4)
                    continue
                ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    finished = self._collect(ref, self.running.pop(ref), run_dir)
                    if finished.retried:
                        job = finished.job
                        pending.appendleft(Job(job.case, job.repeat, job.attempt + 1,
                                               job.avoid + (finished.machine["node_id"],)))
                    yield finished
        finally:
            self.cancel()

    def _dispatch(self, pending: deque, nodes: list[Node], timeout: float, announce: Announce) -> None:
        load: dict[str, list[Need]] = {}
        for run in self.running.values():
            load.setdefault(run.node.node_id, []).append(run.need)
        for job in list(pending):
            need = self._need(job)
            node = pick(nodes, need, load, self.pack, job.avoid)
            if node is None:
                continue
            pending.remove(job)
            payload = {"case": job.case, "options": self.node_options, "timeout": timeout, "env": self.env,
                       "shipment": self._shipment(job.case.task)}
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            ref = self.remote.options(**need.ray_options(), scheduling_strategy=NodeAffinitySchedulingStrategy(
                node.node_id, soft=False)).remote(payload)
            self.running[ref] = _Running(job, node, need, now_iso(), time.monotonic(), time.time())
            load.setdefault(node.node_id, []).append(need)
            retry = f", retry {job.attempt} after a crash" if job.attempt else ""
            announce(job, f"on {node.label}{retry}")

    def _need(self, job: Job) -> Need:
        return Need(cpus=self.options.threads, gpus=int(job.case.device == "gpu"), node_type=self.node_type)

    def _shipment(self, task: str) -> list:
        """[ObjectRef of the task's arrays] (put once per run), or [] when there is nothing to ship."""
        if task not in self.shipments:
            from dlbench.errors import DataError
            from dlbench.data.shipping import read_for_shipping

            try:
                arrays = read_for_shipping(task, self.options.data_dir)
            except DataError:
                arrays = None  # a node with good data still runs; one without fails with its own message
            self.shipments[task] = [self.ray.put(arrays)] if arrays is not None else []
        return self.shipments[task]

    def _collect(self, ref: Any, run: _Running, run_dir: "RunDir") -> Finished:
        """The attempt's result, or a crashed/failed outcome naming the node when the task itself died."""
        ray = self.ray
        log_path = attempt_log(run_dir, run.job)
        round_trip = time.monotonic() - run.started
        executor = {"name": self.name, "address": self.address or os.environ.get("RAY_ADDRESS") or "local",
                    "packed": self.pack, "node_type": self.node_type, "num_cpus": run.need.cpus,
                    "num_gpus": run.need.gpus, "round_trip_s": round_trip, "started_unix": run.started_unix,
                    "ended_unix": time.time()}
        env = None
        try:
            result = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # dlbench's own code raised on the node: a bug, not a crash
            first = (str(exc).strip().splitlines() or [""])[-1]
            outcome = {"status": "failed", "error": f"dlbench internal error on node {run.node.label}: {first}"}
            wall_s, machine = round_trip, self._known_machine(run.node)
            log_path.write_text(str(exc))
        except ray.exceptions.RayError as exc:
            if isinstance(exc, ray.exceptions.NodeDiedError):
                self.dead.add(run.node.node_id)
                why = f"node {run.node.label} died while running the case"
            elif isinstance(exc, ray.exceptions.WorkerCrashedError):
                why = f"the Ray worker running the case on node {run.node.label} died"
            else:
                first = (str(exc).strip().splitlines() or [""])[0]
                why = f"the Ray task on node {run.node.label} was lost ({type(exc).__name__}: {first})"
            outcome = {"status": "crashed", "error": why}
            wall_s, machine = round_trip, self._known_machine(run.node)
            log_path.write_text(f"{why}\n{exc}\n")
        else:
            outcome, wall_s, machine, env = result["outcome"], result["wall_s"], result["machine"], result["env"]
            self.machines[run.node.node_id] = machine
            log_path.write_text(result["log"], encoding="utf-8", errors="replace")
            for name, text in result.get("extra_logs", {}).items():  # worker.loadgen/x -> <log stem>.loadgen/x
                target = log_path.parent / (log_path.stem + name[len("worker"):])
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8", errors="replace")
            if self.options.verbose and result["log"]:
                print(result["log"], end="", flush=True)
            if outcome.get("status") == "crashed":
                outcome["error"] = f"{outcome.get('error')} on node {run.node.label}"
        executor["overhead_s"] = max(0.0, round_trip - wall_s)
        retried = outcome.get("status") in RETRY_STATUSES and run.job.attempt < self.retries
        return Finished(run.job, outcome, wall_s, run.started_at, log_path, machine, executor, env, retried)

    def _known_machine(self, node: Node) -> dict[str, Any]:
        known = self.machines.get(node.node_id)
        return dict(known) if known else {"node_id": node.node_id, "hostname": node.hostname,
                                          "address": node.address}

    def _unplaceable(self, job: Job, nodes: list[Node], run_dir: "RunDir") -> Finished:
        need = self._need(job)
        why = f"{describe_missing(nodes, need)} after waiting {NODE_WAIT_S:g} s"
        log_path = attempt_log(run_dir, job)
        log_path.write_text(why + "\n")
        executor = {"name": self.name, "packed": self.pack, "node_type": self.node_type, "num_cpus": need.cpus,
                    "num_gpus": need.gpus}
        return Finished(job, {"status": "failed", "error": why}, 0.0, now_iso(), log_path, {}, executor)

    # -- stopping ---------------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop everything outstanding by disconnecting: Ray ends this driver's job and kills the workers of
        its tasks, and each case's process dies with its Ray worker.

        Not ``ray.cancel(force=True)``: when a task ends while it is being force-cancelled, Ray 2.x's core
        worker can fail a check ("Tried to complete task that was not pending") and exit the driver with
        status 1, so an interrupted run lost its exit status 130 (seen in CI)."""
        self.running.clear()
        if self.ray.is_initialized():
            self.ray.shutdown()

    def close(self) -> None:
        self.cancel()
