"""How a case's fresh worker process is started: ``fork`` (the default) or ``spawn`` (``--launch``).

spawn: a new interpreter, ``python -m dlbench.measure.worker CASE RESULT``, which imports the harness and the
framework itself (1.5-5 s a case before any work). fork: a fork server per framework (and Keras backend)
imports them once, in the worker's environment and on its CPUs, and forks one child per case; the child
builds, measures and exits exactly as a spawned worker does (dlbench.running.forkserver; docs/launch.md says
what a forked case shares with its server and how that was checked). A server that cannot fork safely (it
started a thread or opened a GPU while importing) says why, and its cases are spawned, the record saying so.

A launcher holds the worker's environment (variables, CPUs, lifetime) as well as the method, so the two
combine; every executor starts its workers through one (``running.launch.run_worker``).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Optional, Sequence

from dlbench.machine.environment import worker_cpus, worker_environment
from dlbench.running.rundir import safe_name

if TYPE_CHECKING:
    from dlbench.running.options import RunOptions
    from dlbench.running.plan import Case

LAUNCHES = ("fork", "spawn")
LAUNCH_ENV = "DLBENCH_LAUNCH"  # the default of --launch (the test suite runs under either)
SERVER_START_S = 600.0  # a server that has not imported its framework by then is given up (its cases spawn)
REPLY_S = 60.0
PR_SET_PDEATHSIG = 1
Stdio = tuple[int, int, int]


def fork_supported() -> bool:
    """Linux with pidfds and fd passing (Python >= 3.9): what the fork server needs."""
    return sys.platform.startswith("linux") and hasattr(os, "pidfd_open") and hasattr(socket, "send_fds")


def default_launch(environment: str = "dlbench") -> str:
    """fork where it works, except in the user's environment (``--environment user``): there glibc's malloc is
    left to adapt its thresholds, and a forked child would inherit the ones its server's imports left, where
    a user's script starts a fresh interpreter. ``DLBENCH_LAUNCH`` overrides."""
    wanted = os.environ.get(LAUNCH_ENV, "").strip().lower()
    if wanted in LAUNCHES:
        return wanted
    return "fork" if fork_supported() and environment != "user" else "spawn"


@dataclass(frozen=True)
class WorkerEnvironment:
    """What a worker runs in, whichever way it is started: its variables, its CPUs (None: not pinned), and
    whether it dies with the process that started it (a Ray worker's cases)."""

    env: dict[str, str]
    cpus: Optional[list[int]] = None
    die_with_parent: bool = False

    def preexec(self, die: Optional[bool] = None) -> Optional[Callable[[], None]]:
        """The function a spawned process runs before exec: pin, and ask to die with its parent."""
        cpus, die = self.cpus, self.die_with_parent if die is None else die
        if not cpus and not die:
            return None
        prctl = _prctl() if die else None  # resolved before fork: nothing to look up in the child
        parent = os.getpid()

        def preexec() -> None:
            if cpus:
                os.sched_setaffinity(0, cpus)
            if prctl is not None:
                prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
                if os.getppid() != parent:  # the parent died before the request took effect
                    os._exit(1)

        return preexec


def _prctl() -> Any:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


class SpawnLauncher:
    """Every worker a new interpreter (``subprocess.Popen``): what dlbench did before fork servers."""

    method = "spawn"

    def __init__(self, environment: WorkerEnvironment) -> None:
        self.environment = environment

    def start(self, case: "Case", command: list[str], stdio: Stdio,
              timeout: float = SERVER_START_S) -> tuple[Any, dict[str, Any]]:
        """Start ``command`` (the worker's) for ``case``; (a process with pid/wait, the record's ``launch``).
        ``timeout``: the case's, also the longest a fork server may take to import its framework."""
        return self.spawn(command, stdio), {"method": "spawn"}

    def spawn(self, command: list[str], stdio: Stdio) -> subprocess.Popen:
        return subprocess.Popen(command, stdin=stdio[0], stdout=stdio[1], stderr=stdio[2], env=self.environment.env,
                                start_new_session=True, preexec_fn=self.environment.preexec())

    def plan(self, cases: Sequence["Case"]) -> None:
        """The cases this launcher will start, in order (a fork server pays off only from its second case)."""

    def done(self, case: "Case") -> None:
        """``case`` has ended (a server whose last planned case it was is closed, its memory given back)."""

    def key(self, case: "Case") -> str:
        return ""

    def close(self) -> None:
        pass


class ForkLauncher(SpawnLauncher):
    """Workers forked from one fork server per preload key, started when its first case comes."""

    method = "fork"

    def __init__(self, environment: WorkerEnvironment, log_dir: Optional[Path] = None) -> None:
        super().__init__(environment)
        self.log_dir = log_dir
        self.servers: dict[str, ForkServer] = {}
        self.refused: dict[str, str] = {}  # key -> why its cases are spawned
        self.left: dict[str, int] = {}  # key -> planned cases not yet ended (keys never planned: unknown)
        self._frameworks: Optional[dict[str, Any]] = None

    def plan(self, cases: Sequence["Case"]) -> None:
        for case in cases:
            key = self.key(case)
            self.left[key] = self.left.get(key, 0) + 1

    def done(self, case: "Case") -> None:
        key = self.key(case)
        if key in self.left:
            self.left[key] -= 1
            if self.left[key] <= 0:
                self.retire(key)

    def key(self, case: "Case") -> str:
        """The server a case's worker is forked from: the framework's preload key ('' for the harness alone)."""
        if self._frameworks is None:
            from dlbench.plugins.registry import load_registry

            self._frameworks = load_registry().frameworks
        method = getattr(self._frameworks.get(case.framework), "preload", None)
        try:
            found = method(case.variant, case.device) if method is not None else None
        except Exception as exc:  # noqa: BLE001 - a broken preload costs speed, never a case
            self.refused[f"{case.framework}:?"] = f"{case.framework}'s preload raised {type(exc).__name__}: {exc}"
            return f"{case.framework}:?"
        return f"{case.framework}:{found.key}" if found is not None else ""

    def start(self, case: "Case", command: list[str], stdio: Stdio,
              timeout: float = SERVER_START_S) -> tuple[Any, dict[str, Any]]:
        key = self.key(case)
        server, started = self.servers.get(key), {}
        if server is None and key not in self.refused and self.left.get(key, 2) < 2:  # importing once saves nothing
            return self.spawn(command, stdio), {"method": "spawn", "asked": "fork",
                                                "why": "the only case of its fork server in this run"}
        if server is None and key not in self.refused:
            server, started["server_start_s"] = self._start_server(key, case, min(timeout, SERVER_START_S))
        if server is None:
            return self.spawn(command, stdio), {"method": "spawn", "asked": "fork", "why": self.refused[key], **started}
        launch = {"method": "fork", "server_pid": server.pid, "preload": server.hello.get("preload") or "harness",
                  **started}  # server_start_s: on the case that waited for its server
        try:
            return server.fork(command, stdio), launch
        except ServerGone as exc:  # died between cases: its cases get a new one
            self.servers.pop(key, None)
            server.close()
            return self.spawn(command, stdio), {"method": "spawn", "asked": "fork", "why": str(exc)}

    def _start_server(self, key: str, case: "Case", timeout: float) -> tuple[Optional["ForkServer"], float]:
        """The server for ``key`` (None when it refused: ``refused`` says why) and the seconds its start took."""
        spec = {"framework": case.framework if key else None, "variant": case.variant, "device": case.device,
                "cpus": self.environment.cpus}
        log = self.log_dir / f"forkserver-{safe_name(key or 'harness')}.log" if self.log_dir else None
        server = ForkServer(spec, self.environment, log, timeout)
        if not server.hello.get("ready"):
            self.refused[key] = f"fork server refused: {server.hello.get('why', 'no answer')}"
            server.close()
            return None, server.start_s
        self.servers[key] = server
        return server, server.start_s

    def retire(self, key: str) -> None:
        server = self.servers.pop(key, None)
        if server is not None:
            server.close()

    def close(self) -> None:
        for key in list(self.servers):
            self.retire(key)


class ServerGone(RuntimeError):
    """The fork server stopped answering."""


class ForkServer:
    """The launcher's end of one fork server process (``dlbench.running.forkserver``)."""

    def __init__(self, spec: dict[str, Any], environment: WorkerEnvironment, log: Optional[Path],
                 timeout: float = SERVER_START_S) -> None:
        from dlbench.running.forkserver import ROOM

        started = time.perf_counter()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [sys.executable, "-m", "dlbench.running.forkserver", str(theirs.fileno()), json.dumps(spec),
                   " " * ROOM]  # the room is where each forked child writes its own command line
        output: Optional[IO[str]] = open(log, "w", encoding="utf-8") if log else None
        try:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output,
                                            stderr=subprocess.STDOUT if output else None, env=environment.env,
                                            pass_fds=[theirs.fileno()], start_new_session=True,
                                            preexec_fn=environment.preexec(die=False))  # dies when ours closes
        finally:
            theirs.close()
            if output:
                output.close()
        self.sock, self.pid = ours, self.process.pid
        try:
            self.hello = self.receive(timeout) or {"ready": False, "why": "it exited while importing"}
        except subprocess.TimeoutExpired:
            self.hello = {"ready": False, "why": f"no answer after {timeout:g} s of importing"}
            self.process.kill()
        if log and not self.hello.get("ready"):
            self.hello["why"] = f"{self.hello.get('why')} (log: {log})"
        self.start_s = time.perf_counter() - started

    def receive(self, timeout: Optional[float]) -> Optional[dict[str, Any]]:
        """The server's next message; None when it has gone; TimeoutExpired after ``timeout`` seconds."""
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            raise subprocess.TimeoutExpired("fork server", timeout or 0)
        try:
            message = self.sock.recv(65536)
        except OSError:
            return None
        return json.loads(message) if message else None

    def fork(self, command: list[str], stdio: Stdio) -> "ForkedWorker":
        try:
            socket.send_fds(self.sock, [json.dumps({"command": command}).encode()], list(stdio))
            reply = self.receive(REPLY_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServerGone(f"fork server {self.pid} did not answer ({exc})") from None
        if reply is None:
            raise ServerGone(f"fork server {self.pid} exited")
        return ForkedWorker(self, reply["pid"])

    def close(self) -> None:
        """Hang up: the server exits (killing a child still running); killed if it has not within 10 s."""
        self.sock.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class ForkedWorker:
    """A worker forked by a fork server, as ``run_worker`` uses a ``Popen``: ``pid`` (its process group),
    ``wait`` (its exit code; TimeoutExpired)."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.server, self.pid = server, pid
        self.returncode: Optional[int] = None

    def wait(self, timeout: Optional[float] = None) -> int:
        if self.returncode is None:
            reply = self.server.receive(timeout)
            # no reply: the server died, and the child with it (it asked for SIGKILL when its parent dies)
            self.returncode = int(reply["exit"]) if reply else -signal.SIGKILL
        return self.returncode


def make_launcher(options: "RunOptions", pin: bool, extra_env: Optional[dict[str, str]] = None,
                  die_with_parent: bool = False, log_dir: Optional[Path] = None) -> SpawnLauncher:
    """The launcher ``options.launch`` names, for workers in ``options.environment`` (pinned when ``pin`` and that
    environment pins)."""
    where = options.environment
    environment = WorkerEnvironment({**worker_environment(options.threads, options.verbose, where), **(extra_env or {})},
                                    worker_cpus(options.threads, environment=where) if pin else None, die_with_parent)
    launch = getattr(options, "launch", None) or default_launch(where)
    if launch == "fork" and fork_supported():
        return ForkLauncher(environment, log_dir)
    return SpawnLauncher(environment)
