"""One case in one fresh worker process: its case file, its log, how long the harness spent around it, and
what becomes of a crash or a timeout (a record, never an exception). Every executor starts its workers
through ``run_worker``; the launcher (``running.launcher``) decides how the process is started and in
what environment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from dlbench.running.options import RunOptions
from dlbench.running.plan import Case

if TYPE_CHECKING:
    from dlbench.running.launcher import SpawnLauncher


STDERR_TAIL_LINES = 20
WORKER_MODULE = "dlbench.measure.worker"


def case_spec(case: Case, options: RunOptions, log_path: Path, extra: Optional[dict] = None) -> dict[str, Any]:
    """The worker's case file: the case, how to measure it, where its extra logs go (``extra``: a Ray node's
    shipped data)."""
    return {**asdict(case), "profile": options.profile, "threads": options.threads, "seed": options.seed,
            "environment": options.environment, "steps": options.steps, "infer_batch_size": options.infer_batch_size, "target": options.target,
            "augment": options.augment, "data_dir": options.data_dir, **options.sampling,
            "inference": options.inference, "scenarios": list(options.scenarios),
            "latency_bound_ms": options.latency_bound_ms, "serve": options.serve,
            "max_batch": list(options.max_batch), "batch_timeout_us": list(options.batch_timeout_us),
            "log_dir": str(log_path.parent), "log_name": log_path.stem,  # extra logs (LoadGen's) go beside the log
            **(extra or {})}


def run_worker(case: Case, options: RunOptions, timeout: float, log_path: Path, launcher: "SpawnLauncher",
               extra: Optional[dict] = None) -> dict[str, Any]:
    """Run one case in a fresh process; crashes and timeouts become records, never exceptions.

    The outcome carries ``launch`` (how the process was started) and ``harness_s`` (the seconds around the
    worker's own: from launch to its first line, and from its result to the result read here).
    """
    with tempfile.TemporaryDirectory(prefix="dlbench-case-") as tmp:
        case_file, result_file = Path(tmp) / "case.json", Path(tmp) / "result.json"
        case_file.write_text(json.dumps(case_spec(case, options, log_path, extra)))
        command = [sys.executable, "-m", WORKER_MODULE, str(case_file), str(result_file)]
        launched = time.time()
        with open(log_path, "w", encoding="utf-8", errors="replace") as log, open(os.devnull, "rb") as devnull:
            out = (1, 2) if options.verbose else (log.fileno(), log.fileno())  # -v: the worker's output is ours
            stdio = (devnull.fileno(), *out)
            process, launch = launcher.start(case, command, stdio, timeout)
            try:
                returncode = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                return {"status": "timeout", "error": f"worker exceeded the case timeout of {timeout:g} s and was "
                        "killed with its children (raise it with --case-timeout)",
                        "stderr_tail": _tail(log_path), "launch": launch}
            except BaseException:
                _kill_group(process)
                raise
        outcome = _outcome(result_file, returncode, log_path)
        outcome["launch"] = launch
        outcome["harness_s"] = harness_seconds(outcome, launched, time.time(), launch.get("server_start_s", 0.0))
        return outcome


def _outcome(result_file: Path, returncode: int, log_path: Path) -> dict[str, Any]:
    if result_file.exists():
        outcome = json.loads(result_file.read_text())
        if outcome.get("status") != "ok":
            outcome["stderr_tail"] = _tail(log_path)
        return outcome
    if returncode < 0:
        name = signal.Signals(-returncode).name
        why = f"worker killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    else:
        why = f"worker exited with code {returncode} before writing a result"
    return {"status": "crashed", "error": why, "stderr_tail": _tail(log_path)}


def harness_seconds(outcome: dict[str, Any], launched: float, returned: float, server_s: float) -> dict[str, float]:
    """Where the harness spent the case's wall time outside the worker's phases: ``start`` (launch to the
    worker's first line, less a fork server's start-up), ``server`` (a fork server started for this case),
    ``worker`` (in the worker outside its phases: plugin registry, result file) and ``hand_back`` (result
    written to result read). Only ``server`` for a worker that wrote no clock (it crashed)."""
    clock = outcome.pop("clock", None) or {}
    phases = sum(((outcome.get("metrics") or {}).get("phases_s") or {}).values())
    began, ended = clock.get("started"), clock.get("finished")
    if began is None or ended is None:
        return {"server": server_s}
    return {"start": max(0.0, began - launched - server_s), "server": server_s,
            "worker": max(0.0, ended - began - phases), "hand_back": max(0.0, returned - ended)}


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])
