"""A fork server: imports a framework once, then forks one fresh worker process per case.

``python -m dlbench.running.forkserver FD SPEC ROOM``, started by ``running.launcher.ForkLauncher`` with the
worker's environment and on the worker's CPUs, so every library it loads reads what a spawned worker's
would (thread variables, glibc's malloc thresholds, the CPU set). It imports the harness's worker modules
and what the framework's ``preload`` names (``dlbench.contract.Preload``), checks that it is still one
thread with no GPU device open, and says so, or why not, to its launcher over the socket FD.

Then, for each request, it forks a child that becomes the case's worker: a new session, the launcher's
stdin/stdout/stderr, the worker's CPUs, a fresh numpy seed, ``python -m dlbench.measure.worker CASE RESULT``
as its command line (written into ROOM, so ``ps`` and ``/proc`` show it as they show a spawned worker), then
``worker.main`` and ``os._exit``. The server never runs a case itself: every child is forked from the same
state, the one right after the imports, never from an earlier case's process. It reports the child's pid
and, when the child has ended, its exit code (as ``subprocess`` does: negative for a signal). When the
launcher goes away (its socket closes) the server kills the running child's process group and exits.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from typing import Any, Optional

ROOM = 1024  # characters of command line the children may rewrite (a worker's: python, -m, module, two paths)
DEVICE_FILES = ("/dev/nvidia", "/dev/dri/", "/dev/kfd", "/dev/accel")  # a GPU context a child must not share
HARNESS_MODULES = ("numpy", "dlbench.measure.worker", "dlbench.contract", "dlbench.data", "dlbench.data.tasks",
                   "dlbench.plugins.registry", "dlbench.zoo", "dlbench.stream", "dlbench.results",
                   "dlbench.measure.metrics", "dlbench.measure.parity", "dlbench.measure.profiles",
                   "dlbench.measure.timing", "dlbench.measure.device_meters", "dlbench.measure.thread_meter",
                   "dlbench.machine.state")  # what every worker imports before or around its case
MESSAGE = 65536
PAGE = os.sysconf("SC_PAGE_SIZE")
MADV_POPULATE_READ, MADV_POPULATE_WRITE = 22, 23  # Linux 5.14
Resident = tuple[list[tuple[int, int]], list[tuple[int, int]]]  # (read-only, private writable) (address, length)


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sock = socket.socket(fileno=int(argv[0]))
    spec = json.loads(argv[1])
    hello = preload(spec)
    resident = resident_ranges() if hello["ready"] else ([], [])
    hello["resident_mb"] = sum(length for ranges in resident for _, length in ranges) / 2**20
    sock.send(json.dumps(hello).encode())
    if hello["ready"]:
        serve(sock, spec.get("cpus"), resident)
    sock.close()
    return 0


def preload(spec: dict[str, Any]) -> dict[str, Any]:
    """Import the harness's worker modules and the framework's preload; whether this process may fork workers."""
    import importlib

    started = time.perf_counter()
    try:
        for name in HARNESS_MODULES:
            importlib.import_module(name)
        loaded = _framework_preload(spec["framework"], spec["variant"], spec["device"])
    except Exception as exc:  # noqa: BLE001 - a broken preload only means spawning the worker as before
        return {"ready": False, "why": f"the preload raised {type(exc).__name__}: {exc}"}
    unfit = unfit_to_fork()
    hello = {"ready": not unfit, "pid": os.getpid(), "preload": loaded, "preload_s": time.perf_counter() - started,
             "modules": len(sys.modules)}
    if unfit:
        hello["why"] = f"importing {loaded or 'the harness'} {unfit}"
    return hello


def _framework_preload(name: str, variant: str, device: str) -> str:
    from dlbench.plugins.registry import load_registry

    framework = load_registry().frameworks.get(name)
    method = getattr(framework, "preload", None)
    found = method(variant, device) if method is not None else None
    if found is None:
        return ""
    found.load()
    return f"{name}:{found.key}"


def unfit_to_fork() -> str:
    """Why this process must not fork workers (a thread besides this one, a GPU device open), or ''."""
    threads = sorted(os.listdir("/proc/self/task"))
    if len(threads) > 1:
        names = [_read(f"/proc/self/task/{tid}/comm") for tid in threads if int(tid) != os.getpid()]
        return f"started {len(threads) - 1} thread(s) ({', '.join(names)}): a forked child would lack them"
    devices = sorted({target for target in _open_files() if target.startswith(DEVICE_FILES)})
    if devices:
        return f"opened {', '.join(devices)}: a forked child cannot use its parent's GPU context"
    return ""


def _open_files() -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    return found


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return "?"


def serve(sock: socket.socket, cpus: Optional[list[int]], resident: "Resident") -> None:
    """Fork a worker for each request; report its pid and exit code; return when the launcher hangs up."""
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, MESSAGE, 3)
        except OSError:
            return
        if not message:
            return
        request = json.loads(message)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            become_worker(request, fds, sock, cpus, resident)  # never returns
        for fd in fds:
            os.close(fd)
        sock.send(json.dumps({"pid": pid}).encode())
        code = wait_child(pid, sock)
        if code is None:
            return
        sock.send(json.dumps({"exit": code}).encode())


def wait_child(pid: int, sock: socket.socket) -> Optional[int]:
    """The child's exit code, as ``subprocess`` gives it; None when the launcher went away first (the child's
    process group is then killed)."""
    import selectors

    with selectors.DefaultSelector() as selector:
        pidfd = os.pidfd_open(pid)
        try:
            selector.register(pidfd, selectors.EVENT_READ, "child")
            selector.register(sock, selectors.EVENT_READ, "launcher")
            while True:
                for key, _ in selector.select():
                    if key.data == "child":
                        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
                    if not sock.recv(MESSAGE):  # the launcher hung up: nobody waits for this case
                        _kill_group(pid)
                        os.waitpid(pid, 0)
                        return None
        finally:
            os.close(pidfd)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def become_worker(request: dict[str, Any], fds: list[int], sock: socket.socket, cpus: Optional[list[int]],
                  resident: "Resident") -> None:
    """In the forked child: become the case's worker process, run it, exit; never returns to the server."""
    code = 70  # EX_SOFTWARE: the child failed before the worker ran
    try:
        server = os.getppid()
        os.setsid()
        die_with(server)
        if cpus:
            os.sched_setaffinity(0, cpus)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        sock.close()
        fresh_process_state()
        populate(*resident)
        started = time.time()
        set_command_line(request["command"])
        from dlbench.measure import worker

        sys.argv = [str(worker.__file__), *request["command"][3:]]  # as `python -m` sets it
        code = worker.main(request["command"][3:], started_at=started)
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - reported in the case's log; the exit code says it failed
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def resident_ranges() -> Resident:
    """The pages of this process that are in its page tables (``/proc/self/pagemap``), as address ranges:
    those of read-only or shared mappings, and those of private writable ones.

    A forked child gets the parent's page tables for its anonymous memory only, shared until written, and none
    for file-backed mappings; ``populate`` makes its memory what a spawned worker's is after the same imports."""
    import numpy as np

    found: Resident = ([], [])
    with open("/proc/self/pagemap", "rb") as pagemap:
        for low, high, perms, path in _mappings():
            if "r" not in perms or path.startswith("[v"):  # guard pages; vdso, vvar, vsyscall
                continue
            pagemap.seek(low // PAGE * 8)
            present = np.frombuffer(pagemap.read((high - low) // PAGE * 8), dtype=np.uint64) >> np.uint64(63)
            edges = np.flatnonzero(np.diff(np.concatenate(([0], present.astype(np.int8), [0]))))
            ranges = found[1] if "w" in perms and "p" in perms else found[0]
            ranges.extend((low + int(a) * PAGE, int(b - a) * PAGE) for a, b in zip(edges[::2], edges[1::2]))
    return found


def _mappings() -> list[tuple[int, int, str, str]]:
    """(start, end, permissions, path) of this process's mappings with resident pages (``/proc/self/smaps``)."""
    found, current = [], None
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split(None, 1)[0]
            if not head.endswith(":"):
                parts = line.split()
                low, high = (int(x, 16) for x in parts[0].split("-"))
                current = (low, high, parts[1], parts[5] if len(parts) > 5 else "")
            elif head == "Rss:" and current is not None and int(line.split()[1]) > 0:
                found.append(current)
    return found


def populate(read: list[tuple[int, int]], write: list[tuple[int, int]]) -> None:
    """Map ``read`` and write-fault ``write`` (copying what the child shares with the server), so the child's
    memory is private and mapped as a spawned worker's: the same resident set (``peak_memory_mb``), and no
    copy-on-write or mapping fault left for the case's timed blocks. A tenth of a second or two per case."""
    import ctypes

    madvise = ctypes.CDLL(None, use_errno=True).madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    failed = 0
    for ranges, advice, writing in ((read, MADV_POPULATE_READ, False), (write, MADV_POPULATE_WRITE, True)):
        for address, length in ranges:
            if madvise(address, length, advice) != 0 and not _touch(address, length, writing):
                failed += 1
    if failed:
        print(f"dlbench fork server: {failed} memory range(s) could not be mapped as in the server", file=sys.stderr)


def _touch(address: int, length: int, writing: bool) -> bool:
    """Fault the pages in by hand (kernels before 5.14): read a byte of each, or write it back."""
    import ctypes

    import numpy as np

    try:
        pages = np.frombuffer((ctypes.c_ubyte * length).from_address(address), dtype=np.uint8)[::PAGE]
        if writing:
            pages += 0  # a write of each page's first byte, unchanged: the copy-on-write copy
        else:
            int(pages.sum())
    except (ValueError, TypeError, OSError):
        return False
    return True


def die_with(parent: int) -> None:
    """Ask the kernel for SIGKILL when the server dies (a case never outlives the server that answers for it)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the server died before the request took effect
        os._exit(1)


def fresh_process_state() -> None:
    """What a fresh interpreter has and a forked one would share with its siblings: Python's default signal
    handlers and entropy-seeded global RNGs (``random`` reseeds itself in a forked child; numpy's does not)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    if "numpy.random" in sys.modules:
        sys.modules["numpy.random"].seed()


def set_command_line(words: list[str]) -> bool:
    """Write ``words`` over this process's command line (``/proc/self/cmdline``, what ``ps`` shows), within the
    room the server's own command line left; False when they do not fit."""
    import ctypes

    fields = _read("/proc/self/stat").rsplit(")", 1)[-1].split()
    start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48, 49 of proc(5))
    data = b"\0".join(word.encode() for word in words) + b"\0"
    if len(data) > end - start:
        return False
    ctypes.memmove(start, data.ljust(end - start, b"\0"), end - start)
    return True


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # as the worker: no interpreter teardown of the frameworks' thread pools and modules (seconds)
