"""Running planned cases, each in a fresh worker process, and writing each record as it ends.

Repeats are interleaved in alternating order (A B | B A | A B ...): on a noisy machine the second of
two back-to-back processes tends to run faster, and alternation cancels that out.
"""

from __future__ import annotations

import secrets
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Optional, TextIO

from dlbench.data import TASKS
from dlbench.machine import identity
from dlbench.machine.peak import run_facts
from dlbench.running.accounting import account, time_line
from dlbench.running.options import RunOptions
from dlbench.running.plan import Case, Plan
from dlbench.plugins.registry import Registry
from dlbench.results import SCHEMA_VERSION
from dlbench.running.rundir import RunDir

@dataclass
class RunState:
    """What the run has done so far; the manifest on disk mirrors it."""

    run_id: str
    total: int
    done: int = 0
    started: int = 0
    durations: list[float] = field(default_factory=list)
    interrupted: bool = False
    time_s: dict[str, float] = field(default_factory=dict)  # where the run's wall time went (running.accounting)


def new_run_id() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def schedule(cases: list[Case], repeats: int) -> Iterator[tuple[Case, int]]:
    """(case, repeat) in alternating order: forward on even repeats, backward on odd ones."""
    for repeat in range(repeats):
        for case in (cases if repeat % 2 == 0 else list(reversed(cases))):
            yield case, repeat


def base_record(case: Case, repeat: int, run_id: str, options: RunOptions, environment: dict[str, Any],
                registry: Registry, worker_environment: Optional[dict[str, Any]] = None,
                startup_s: Optional[dict[str, float]] = None) -> dict[str, Any]:
    owner = registry.owner.get(case.framework)
    batch: dict[str, Any] = {}
    if case.batch_size == "auto":  # an int until the worker reports the knee (measure.batch_sweep)
        from dlbench.measure.profiles import get_profile

        batch = {"batch_size": get_profile(options.profile).auto_batch_start, "batch_size_requested": "auto"}
    return {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "case_id": case.id, "repeat": repeat,
        **asdict(case), **batch, "synthetic": TASKS[case.task].synthetic, "framework_version": "", "threads": options.threads, "seed": options.seed,
        "profile": options.profile, "status": "skipped", "error": None, "metrics": {},
        "plugin": {"name": owner.name, "dist": owner.dist, "dist_version": owner.dist_version} if owner else {},
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "env": environment,
        "worker_environment": worker_environment, "run_startup_s": startup_s or {},
    }


def run_plan(plan: Plan, registry: Registry, options: RunOptions, run_dir: RunDir, say: Callable[[str], None],
             finished: frozenset[tuple[str, int]] = frozenset(), run_id: Optional[str] = None) -> RunState:
    """Run every planned case ``options.repeat`` times into ``run_dir``; skipped cases are recorded once."""
    from dlbench.measure.profiles import get_profile
    from dlbench.running.executors import Job

    began = time.monotonic()
    run_dir.create()
    environment, executor, startup_s = _start_up(options, plan)
    todo = [(c, r) for c, r in schedule(plan.cases, options.repeat) if (c.id, r) not in finished]
    state = RunState(run_id or new_run_id(), len(todo))

    def record_of(case: Case, repeat: int) -> dict[str, Any]:
        return base_record(case, repeat, state.run_id, options, environment, registry, executor.worker_environment,
                           startup_s)

    for case, reason in plan.skipped:
        if (case.id, 0) not in finished:
            record = record_of(case, 0)
            record.update(status="skipped", error=reason)
            run_dir.append(record)
    timeout = options.case_timeout or get_profile(options.profile).case_timeout_s

    def announce(job: Job, where: str) -> None:
        state.started += job.attempt == 0  # a retry keeps its case's number
        say(_progress_line(state, job.case, job.repeat, options.repeat, where))

    attempts = executor.run([Job(case, repeat) for case, repeat in todo], timeout, run_dir, announce)
    ours: list[dict[str, Any]] = []
    try:
        for attempt in attempts:
            record = record_of(attempt.job.case, attempt.job.repeat)
            record.update(attempt.record_fields())
            ours.append(record)
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
    state.time_s = account(ours, time.monotonic() - began)
    say(time_line(state.time_s))
    return state


def _start_up(options: RunOptions, plan: Plan) -> tuple[dict[str, Any], Any, dict[str, float]]:
    """The run's environment (identity; cgroup quota, governor, turbo; the measured GEMM peak), its executor,
    and the seconds each took (every record carries them as ``run_startup_s``)."""
    from dlbench.running.executors import make_executor

    clock = time.monotonic()
    environment = identity.capture()
    identity_s, clock = time.monotonic() - clock, time.monotonic()
    environment.update(run_facts(options.threads, remeasure=options.profile != "smoke",
                                 gpu=any(case.device == "gpu" for case in plan.cases)))
    facts_s, clock = time.monotonic() - clock, time.monotonic()
    executor = make_executor(options, environment)  # first: a cluster that cannot be reached writes nothing
    return environment, executor, {"identity": identity_s, "machine_facts": facts_s,
                                   "executor": time.monotonic() - clock}


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
