"""One case in one fresh worker process: its case file, its environment, its log, and what becomes of a crash
or a timeout (a record, never an exception). Every executor starts its workers through ``run_worker``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Optional

from dlbench.machine.environment import worker_environment
from dlbench.running.options import RunOptions
from dlbench.running.plan import Case


STDERR_TAIL_LINES = 20


def run_worker(case: Case, options: RunOptions, timeout: float, log_path: Path, extra: Optional[dict] = None,
               extra_env: Optional[dict[str, str]] = None,
               preexec_fn: Optional[Callable[[], None]] = None) -> dict[str, Any]:
    """Run one case in a fresh process; crashes and timeouts become records, never exceptions.

    ``extra`` adds to the case file (a Ray node's shipped data), ``extra_env`` to the worker's
    environment (the driver's plugin choice), ``preexec_fn`` runs in the child (die with the parent).
    """
    spec = {**asdict(case), "profile": options.profile, "threads": options.threads, "seed": options.seed,
            "steps": options.steps, "infer_batch_size": options.infer_batch_size, "target": options.target,
            "augment": options.augment, "data_dir": options.data_dir, **options.sampling,
            "inference": options.inference, "scenarios": list(options.scenarios),
            "latency_bound_ms": options.latency_bound_ms, "serve": options.serve,
            "max_batch": list(options.max_batch), "batch_timeout_us": list(options.batch_timeout_us),
            "log_dir": str(log_path.parent), "log_name": log_path.stem,  # extra logs (LoadGen's) go beside the log
            **(extra or {})}
    with tempfile.TemporaryDirectory(prefix="dlbench-case-") as tmp:
        case_file, result_file = Path(tmp) / "case.json", Path(tmp) / "result.json"
        case_file.write_text(json.dumps(spec))
        command = [sys.executable, "-m", "dlbench.measure.worker", str(case_file), str(result_file)]
        with open(log_path, "w", encoding="utf-8", errors="replace") as log:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log if not options.verbose else None,
                                       stderr=subprocess.STDOUT if not options.verbose else None,
                                       env={**worker_environment(options.threads, options.verbose, options.environment),
                                            **(extra_env or {})},
                                       start_new_session=True, preexec_fn=preexec_fn)
            try:
                returncode = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                return {"status": "timeout", "error": f"worker exceeded the case timeout of {timeout:g} s and was "
                        "killed with its children (raise it with --case-timeout)",
                        "stderr_tail": _tail(log_path)}
            except BaseException:
                _kill_group(process)
                raise
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
