"""Running planned cases, each in a fresh worker process, and writing each record as it ends.

Repeats are interleaved in alternating order (A B | B A | A B ...): on a noisy machine the second of
two back-to-back processes tends to run faster, and alternation cancels that out.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, TextIO

from dlbench import env as envmod
from dlbench.data import TASKS
from dlbench.peak import run_facts
from dlbench.plan import Case, Plan
from dlbench.plugins import Registry
from dlbench.results import SCHEMA_VERSION
from dlbench.rundir import RunDir

STDERR_TAIL_LINES = 20


@dataclass
class RunOptions:
    profile: str = "quick"
    threads: int = 1
    seed: int = 0
    repeat: int = 1
    steps: Optional[int] = None
    infer_batch_size: Optional[int] = None
    target: Optional[float] = None
    augment: bool = False
    data_dir: Optional[str] = None
    case_timeout: Optional[float] = None
    verbose: bool = False
    sampling: dict = field(default_factory=dict)  # --estimator, --ci-target, --max-timing (sampling_cli.py)
    inference: str = "own"  # own: dlbench's Offline/SingleStream; loadgen: also MLPerf's LoadGen scenarios
    scenarios: tuple[str, ...] = ()  # LoadGen scenarios (empty: all four)
    latency_bound_ms: Optional[float] = None  # LoadGen Server p99 bound (None: the zoo model's)
    serve: str = "single"  # LoadGen Server: single (one query at a time) | batched (dlbench.loadgen.batching)
    max_batch: tuple[int, ...] = ()  # batched: the max batch sizes searched (empty: the default grid)
    batch_timeout_us: tuple[float, ...] = ()  # batched: the gather timeouts searched (empty: the default grid)
    executor: str = "local"  # where cases run: local | ray (dlbench.executors)
    ray_address: Optional[str] = None
    node_type: Optional[str] = None  # a custom Ray resource every case's node must have
    pack: bool = False  # let cases share a node's cores (never by default)
    retries: int = 1  # a crashed attempt is run again (on another node), this many times


@dataclass
class RunState:
    """What the run has done so far; the manifest on disk mirrors it."""

    run_id: str
    total: int
    done: int = 0
    started: int = 0
    durations: list[float] = field(default_factory=list)
    interrupted: bool = False


def new_run_id() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def schedule(cases: list[Case], repeats: int) -> Iterator[tuple[Case, int]]:
    """(case, repeat) in alternating order: forward on even repeats, backward on odd ones."""
    for repeat in range(repeats):
        for case in (cases if repeat % 2 == 0 else list(reversed(cases))):
            yield case, repeat


def base_record(case: Case, repeat: int, run_id: str, options: RunOptions, environment: dict[str, Any],
                registry: Registry) -> dict[str, Any]:
    owner = registry.owner.get(case.framework)
    return {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "case_id": case.id, "repeat": repeat,
        **asdict(case), "synthetic": TASKS[case.task].synthetic, "framework_version": "", "threads": options.threads, "seed": options.seed,
        "profile": options.profile, "status": "skipped", "error": None, "metrics": {},
        "plugin": {"name": owner.name, "dist": owner.dist, "dist_version": owner.dist_version} if owner else {},
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "env": environment,
    }


def run_plan(plan: Plan, registry: Registry, options: RunOptions, run_dir: RunDir, say: Callable[[str], None],
             finished: frozenset[tuple[str, int]] = frozenset(), run_id: Optional[str] = None) -> RunState:
    """Run every planned case ``options.repeat`` times into ``run_dir``; skipped cases are recorded once."""
    from dlbench.profiles import get_profile

    from dlbench.executors import Job, make_executor

    run_dir.create()
    environment = envmod.capture()
    environment.update(run_facts(options.threads, remeasure=options.profile != "smoke"))  # cgroup quota, governor, turbo; the measured GEMM peak
    executor = make_executor(options, environment)  # first: a cluster that cannot be reached writes nothing
    todo = [(c, r) for c, r in schedule(plan.cases, options.repeat) if (c.id, r) not in finished]
    state = RunState(run_id or new_run_id(), len(todo))
    for case, reason in plan.skipped:
        if (case.id, 0) not in finished:
            record = base_record(case, 0, state.run_id, options, environment, registry)
            record.update(status="skipped", error=reason)
            run_dir.append(record)
    timeout = options.case_timeout or get_profile(options.profile).case_timeout_s

    def announce(job: Job, where: str) -> None:
        state.started += job.attempt == 0  # a retry keeps its case's number
        say(_progress_line(state, job.case, job.repeat, options.repeat, where))

    attempts = executor.run([Job(case, repeat) for case, repeat in todo], timeout, run_dir, announce)
    try:
        for attempt in attempts:
            record = base_record(attempt.job.case, attempt.job.repeat, state.run_id, options, environment, registry)
            record.update(attempt.record_fields())
            if record["status"] != "ok":
                record["log"] = str(attempt.log_path)
            run_dir.append(record)
            if not attempt.retried:
                state.done += 1
                state.durations.append(record["wall_s"])
            say(_outcome_line(record, named=executor.name != "local"))
    except KeyboardInterrupt:
        state.interrupted = True
        say("interrupted: the running case was stopped; finished results are in " + str(run_dir.results))
    finally:
        attempts.close()
        executor.close()
    return state


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
        command = [sys.executable, "-m", "dlbench.worker", str(case_file), str(result_file)]
        with open(log_path, "w", encoding="utf-8", errors="replace") as log:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log if not options.verbose else None,
                                       stderr=subprocess.STDOUT if not options.verbose else None,
                                       env={**envmod.worker_environment(options.threads, options.verbose),
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


def _progress_line(state: RunState, case: Case, repeat: int, repeats: int, where: str = "") -> str:
    left = state.total - state.done
    eta = ""
    if state.durations:
        seconds = sum(state.durations) / len(state.durations) * left
        eta = f" · {left} left, about {_duration(seconds)}"
    rep = f" repeat {repeat + 1}/{repeats}" if repeats > 1 else ""
    return (f"[{state.started}/{state.total}] {case.framework}/{case.variant} {case.model} on {case.task} "
            f"({case.device}, batch {case.batch_size}){rep}{' ' + where if where else ''}{eta}")


def _outcome_line(record: dict[str, Any], named: bool = False) -> str:
    """The line under a case's progress line; ``named``: say which case (results of a cluster come back in any order)."""
    m = record.get("metrics") or {}
    who = ""
    if named:
        rep = f" repeat {record['repeat'] + 1}" if record.get("repeat") else ""
        who = f"{record['framework']}/{record['variant']} {record['model']} on {record['task']}{rep} "
    if record["status"] != "ok":
        log = f" (log: {record['log']})" if record.get("log") else ""
        return f"    {who}{record['status']}: {record.get('error')}{log}"
    parts = []
    if "train_samples_per_s" in m:
        parts.append(f"train {m['train_samples_per_s']:,.0f}/s")
    if "infer_samples_per_s" in m:
        parts.append(f"infer {m['infer_samples_per_s']:,.0f}/s")
    if m.get("accuracy") is not None:
        parts.append(f"accuracy {m['accuracy']:.3f}")
    parts.append(f"{record['wall_s']:.1f} s")
    disturbed = f" (~ {', '.join(m['disturbed'])})" if m.get("disturbed") else ""
    return f"    {who}ok: " + ", ".join(parts) + (" (noisy)" if m.get("noisy") else "") + disturbed


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def stream(text: str, handle: TextIO = sys.stderr) -> None:
    print(text, file=handle, flush=True)
