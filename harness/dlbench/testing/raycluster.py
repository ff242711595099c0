"""A real multi-node Ray cluster on one machine, for tests, benchmarks and trying ``--executor ray``.

Every node is a ``ray start --block`` process in a session of its own, with its own ports, CPUs,
custom resources and environment (so one node can lack a data set the driver has). ``kill_node``
SIGKILLs a node's whole process tree, as a machine that loses power would; ``stop`` does that to
every node. Nothing here ever runs ``ray stop``, which would stop every Ray on the machine.

    with LocalRayCluster(Path("/tmp/c"), head_cpus=2) as cluster:
        cluster.add_node(num_cpus=2, resources={"second": 1})
        subprocess.run(["dlbench", "run", ..., "--executor", "ray", "--ray-address", cluster.address])
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from dlbench.testing.signals import sigint_default

# Every node of a test cluster listens on loopback. Ray swaps 127.0.0.1 (and localhost) for the machine's
# network address when it starts a node; another loopback address it keeps as given.
LOOPBACK = "127.0.0.2"
STARTED = "This command will now block forever"  # what ``ray start --block`` prints once the node is up


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@dataclass
class RayNode:
    name: str
    process: subprocess.Popen
    log: Path
    resources: dict[str, float] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid


class LocalRayCluster:
    """A head node (started by ``start``) and any number of worker nodes (``add_node``)."""

    def __init__(self, root: Path, head_cpus: int = 2, head_resources: Optional[Mapping[str, float]] = None,
                 object_store_mb: int = 200, env: Optional[Mapping[str, str]] = None) -> None:
        self.root = Path(root)
        self.head_cpus, self.head_resources = head_cpus, dict(head_resources or {})
        self.object_store_mb = object_store_mb
        self.env = dict(env or {})
        self.port = free_port()
        self.nodes: list[RayNode] = []
        self.token_path = self.root / "auth_token"

    @property
    def client_env(self) -> dict[str, str]:
        """Environment variables a driver needs to join (token authentication, with this cluster's own token)."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token_path)}

    @property
    def address(self) -> str:
        """The head's GCS address as Ray wrote it (on loopback: every node is started with that address)."""
        written = self.root / "ray" / "ray_current_cluster"
        return written.read_text().strip() if written.exists() else f"{LOOPBACK}:{self.port}"

    def __enter__(self) -> "LocalRayCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 90) -> "LocalRayCluster":
        self.root.mkdir(parents=True, exist_ok=True)
        self.token_path.write_text(uuid.uuid4().hex)  # never ~/.ray/auth_token: the cluster keeps its own
        self.token_path.chmod(0o600)
        args = ["--head", "--port", str(self.port), "--ray-client-server-port", str(free_port()),
                "--dashboard-port", str(free_port()), "--include-dashboard=false",
                "--temp-dir", str(self.root / "ray")]
        fast_checks = {"RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "1000",
                       "RAY_health_check_failure_threshold": "4"}  # a dead node is declared dead in ~3 s
        self._launch("head", args, self.head_cpus, self.head_resources, {**fast_checks, **self.env}, timeout)
        return self

    def add_node(self, num_cpus: int = 2, resources: Optional[Mapping[str, float]] = None,
                 env: Optional[Mapping[str, str]] = None, name: str = "", timeout: float = 90) -> RayNode:
        """A worker node joined to the head; ``env`` replaces the variables it names (HOME, DLBENCH_DATA, ...)."""
        return self._launch(name or f"node{len(self.nodes)}", ["--address", self.address], num_cpus,
                            dict(resources or {}), {**self.env, **(env or {})}, timeout)

    def _launch(self, name: str, args: list[str], cpus: int, resources: dict[str, float],
                env: Mapping[str, str], timeout: float) -> RayNode:
        # Loopback only: left to itself Ray advertises the machine's network address instead.
        command = [str(Path(sys.executable).with_name("ray")), "start", *args, "--block", "--num-cpus", str(cpus),
                   "--node-ip-address", LOOPBACK,
                   "--resources", json.dumps(resources), "--object-store-memory",
                   str(self.object_store_mb * 1024 * 1024), "--disable-usage-stats",
                   "--dashboard-agent-listen-port", str(free_port()), "--metrics-export-port", str(free_port()),
                   "--runtime-env-agent-port", str(free_port())]
        log = self.root / f"{name}.log"
        full_env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **self.client_env, **env}
        with open(log, "w") as handle, sigint_default():  # ray.cancel interrupts a running task with SIGINT
            process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=full_env, start_new_session=True)
        node = RayNode(name, process, log, {"CPU": cpus, **resources})
        self.nodes.append(node)
        deadline = time.monotonic() + timeout
        while STARTED not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                self.stop()
                raise RuntimeError(f"ray node {name} did not start (exit {process.poll()}):\n{tail}")
            time.sleep(0.2)
        return node

    def kill_node(self, node: RayNode, wait: bool = True) -> None:
        """SIGKILL the node's processes at once (its Ray workers included), as a machine that dies.

        ``wait``: return once the head has declared the node dead, so that the next driver never sees
        it listed as alive (the health checks of this cluster notice within about 3 s).
        """
        _kill_tree(node.pid)
        node.process.wait()
        live = [n for n in self.nodes if n.process.poll() is None]
        if wait and self.nodes and self.nodes[0].process.poll() is None:
            self.wait_for_live_nodes(len(live))

    def wait_for_live_nodes(self, count: int, timeout: float = 60) -> None:
        """Block until the head counts exactly ``count`` live nodes (asked from a separate Ray driver)."""
        code = ("import sys, time, ray\n"
                "ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False)\n"
                "deadline = time.monotonic() + float(sys.argv[3])\n"
                "while sum(n['Alive'] for n in ray.nodes()) != int(sys.argv[2]):\n"
                "    if time.monotonic() > deadline: sys.exit('live nodes: %d' % sum(n['Alive'] for n in ray.nodes()))\n"
                "    time.sleep(0.2)\n")
        subprocess.run([sys.executable, "-c", code, self.address, str(count), str(timeout)], check=True,
                       env={**os.environ, **self.client_env}, timeout=timeout + 30, capture_output=True)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            if node.process.poll() is None:
                self.kill_node(node, wait=False)
        self.nodes.clear()


def _kill_tree(root: int) -> None:
    """SIGKILL ``root``'s process group and every descendant (Ray workers start sessions of their own)."""
    tree = _descendants(root)
    try:
        os.killpg(root, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        for child in children.get(pid, []):
            found.append(child)
            frontier.append(child)
    return found
