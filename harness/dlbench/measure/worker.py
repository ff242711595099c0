"""Runs ONE case in this (fresh) process and writes its result as JSON.

``python -m dlbench.measure.worker CASE.json RESULT.json``. The parent (runner.py) owns the record; this
process only measures. A plugin exception fails the case naming the plugin and the call (``guarded``);
an exception of the harness's own code is reported as a dlbench internal error, with its traceback.
"""

from __future__ import annotations

import time

STARTED_AT = time.time()  # the worker's first line: what ran before it is the launch's cost (running.launch)

import json
import os
import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from dlbench.errors import (CaseFailed, CaseSkipped, CaseUnsupported, DataError, FrameworkUnavailable, PluginFailed,
                            UnknownName)
from dlbench.plugins.guarded import GuardedSession, plugin_call, unknown_layer_kind

DEFAULT_INFER_BATCH = 1024  # batch of the Offline scenario unless --infer-batch-size says otherwise

@dataclass
class Measurements:
    """What the timing code measured in one case, before anything is derived from it."""

    metrics: dict[str, Any]
    phases_s: dict[str, float]


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """Measure one case; returns the worker's part of the record (status, metrics, fairness, data)."""
    from dlbench.measure.metrics import derive_metrics
    from dlbench.measure.parity import check_parity
    from dlbench.plugins.registry import load_registry
    from dlbench.zoo import get_model

    startup_s = _process_age_s()  # interpreter start and dlbench's imports: fixed cost before the case's own work
    spec = get_model(case["model"])
    registry = load_registry()
    framework = _framework(registry, case["framework"])
    plugin = registry.owner[framework.name].name
    result: dict[str, Any] = {"framework_version": plugin_call(plugin, "version", framework.version)}

    data, load_s = _load_data(case)
    result["data"] = {"pipeline": data.pipeline, "source": data.source, "train": len(data.x_train),
                      "val": len(data.x_val), "test": len(data.x_test), "augment_s": data.augment_s,
                      "synthetic": data.synthetic}
    sweep = None
    if case["batch_size"] == "auto":  # the batch where the device works (measure.batch_sweep), then the case at it
        sweep = _batch_sweep(plugin, framework, spec, data, case)
        case = {**case, "batch_size": sweep["knee"]}
        result.update(batch_size=sweep["knee"], batch_size_requested="auto")
    setup = setup_of(spec, data, case, case["batch_size"])
    started = time.perf_counter()
    session = GuardedSession(_prepare(plugin, framework, setup), plugin)
    prepare_s = time.perf_counter() - started

    parity_started = time.perf_counter()
    parity = check_parity(session, spec, data, case["batch_size"])
    parity_s = time.perf_counter() - parity_started
    settle_s = settle_allocator(session, data, case)
    measured = measure(session, case, data)
    from dlbench.stream import batch_order

    result["batch_order"] = batch_order(setup.stream.step, session.steps_trained)
    metrics = {**measured.metrics, "params": parity.params, "initial_loss": parity.initial_loss,
               "expected_initial_loss": parity.expected_initial_loss,
               "flops_per_sample": spec.flops_per_sample(data.input_shape), "load_s": load_s,
               "prepare_s": prepare_s,
               "phases_s": {"startup": startup_s, "load": load_s, "prepare": prepare_s, "parity": parity_s,
                            **({"settle": settle_s} if settle_s is not None else {}), **measured.phases_s},
               "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    if sweep is not None:
        metrics["batch_sweep"] = sweep
    device_peak = session.optional("peak_device_memory_mb")
    if device_peak is not None and metrics.get("peak_device_memory_mb") is None:  # else per phase, in measure
        metrics["peak_device_memory_mb"] = device_peak()
    result["fairness"] = session.describe()
    from dlbench.measure.roofline import training_bytes_per_sample

    metrics["train_bytes_per_sample"] = training_bytes_per_sample(  # the roofline's x axis (measure.roofline)
        spec, data.input_shape, case["batch_size"], str(result["fairness"].get("compute_dtype") or "float32"))
    result["metrics"] = derive_metrics(metrics, case["batch_size"])
    result["status"] = "ok"
    return result


def settle_allocator(session: GuardedSession, data: Any, case: dict[str, Any]) -> Optional[float]:
    """In the user's environment, one evaluation of the validation set before training is timed; returns its
    seconds (None in dlbench's environment, where nothing is needed).

    With glibc's adaptive malloc thresholds a PyTorch CNN's training step costs what the process freed before
    it: 10,000 page faults a step in a process that never evaluated, ~100 after one evaluation at the eval batch
    (docs/fidelity.md, section 4), and dlbench's own validations would switch the regime in the middle of the
    timed blocks. Evaluating first times the case in the state a user's script reaches after its first epoch's
    evaluation, as the fidelity protocol's tutorial loops do in this environment. It does not make that state one
    number: which regime a fresh process lands in is still drawn per process, by details as small as its address
    layout (0 to ~9,000 faults a step after the same evaluation; docs/fidelity.md, section 6), so read
    user-environment CNN figures over ``--repeat``.
    """
    if case.get("environment") != "user":
        return None
    started = time.perf_counter()
    x, y = (data.x_val, data.y_val) if len(data.x_val) else (data.x_test, data.y_test)
    session.evaluate(x, y)
    return time.perf_counter() - started


def measure(session: GuardedSession, case: dict[str, Any], data: Any) -> Measurements:
    """Training (blocked, time-to-accuracy), test accuracy, extra timed blocks, Offline and SingleStream."""
    from dlbench.machine.state import Sampler
    from dlbench.measure.profiles import get_profile, with_overrides
    from dlbench.measure.device_meters import CaseMeters
    from dlbench.measure.thread_meter import new_meter
    from dlbench.measure.timing import measure_latency, measure_offline, measure_training, top_up_training
    from dlbench.zoo import get_model, target_for

    profile, spec, bs = get_profile(case["profile"]), get_model(case["model"]), case["batch_size"]
    profile = with_overrides(profile, case)  # --estimator, --ci-target, --max-timing
    steps = case.get("steps") or profile.steps_for(spec, case["task"], len(data.x_train), bs)
    target = case.get("target") or target_for(spec, case["task"])
    infer_bs = case.get("infer_batch_size") or profile.infer_batch.get(spec.name) or DEFAULT_INFER_BATCH
    clock = [time.perf_counter()]
    phases_s: dict[str, float] = {}
    sampler = Sampler(case["threads"]).start()  # steal, the others' load, context switches (dlbench.machine.state)
    meter = new_meter()  # which threads of this process ran during the timed blocks
    device = CaseMeters(session, case["device"])  # energy, device timer, memory peaks per phase
    training = measure_training(session, data, bs, steps, profile, target, meter=device.around(meter, "train"))
    device.settle()
    phases_s["train"] = _lap(clock)
    loss, accuracy = session.evaluate(data.x_test, data.y_test)
    phases_s["test_eval"] = _lap(clock)
    extra_steps = top_up_training(session, training, bs, profile, meter=device.around(meter, "top_up"))
    device.settle()
    device.phase_peak("train")
    phases_s["extra_timing"] = _lap(clock)
    offline = measure_offline(session, data.x_test, infer_bs, profile, meter=device.around(meter, "infer"))
    device.settle()
    phases_s["offline"] = _lap(clock)
    latency = measure_latency(session, data.x_test, profile)
    device.phase_peak("infer")
    phases_s["latency"] = _lap(clock)
    metrics = {
        "train_blocks": training.rates, "infer_blocks": offline.block_samples_per_s,
        "train_steps": training.steps, "block_steps": training.block_steps, "timing_extra_steps": extra_steps,
        "train_blocks_raw": training.raw_rates, "raw_block_steps": training.raw_block_steps,
        "first_step_s": training.first_step_s,
        "infer_batch_size": infer_bs, "infer_first_call_s": offline.first_call_s,
        "latency_ms": latency,
        "accuracy": accuracy, "loss": loss, "val_accuracy": training.val_accuracy,
        "target_accuracy": target, "time_to_accuracy_s": training.tta_s, "train_wall_s": training.end_s,
    }
    metrics.update(device.metrics(_median(training.rates), _median(offline.block_samples_per_s), training.raw_rates,
                                  offline.block_samples_per_s, (bs, infer_bs)))  # the blocks as timed
    observed = meter.summary(case["threads"])
    if observed:
        metrics.update(threads_observed=observed, busy_threads=observed["busy"],
                       over_thread_budget=observed["over_budget"])
    metrics.update(machine_state=sampler.stop(), estimator=profile.estimator, ci_target=profile.ci_target)
    if case.get("inference") == "loadgen":  # MLPerf's LoadGen scenarios, checked against the numbers above
        from dlbench.loadgen.measure import measure_loadgen

        metrics.update(measure_loadgen(session, case, data, metrics))
        phases_s["loadgen"] = _lap(clock)
    return Measurements(metrics, phases_s)


def setup_of(spec: Any, data: Any, case: dict[str, Any], batch_size: int) -> Any:
    """The plugin's ``Setup`` for ``case`` at ``batch_size`` (the case's, or one the batch sweep tries)."""
    from dlbench.contract import Setup
    from dlbench.machine.environment import DEFAULT_ENVIRONMENT

    return Setup(spec=spec, data=data, device=case["device"], variant=case["variant"], seed=case["seed"],
                 threads=case["threads"], batch_size=batch_size, options=case.get("options", {}),
                 environment=case.get("environment", DEFAULT_ENVIRONMENT))


def _batch_sweep(plugin: str, framework: Any, spec: Any, data: Any, case: dict[str, Any]) -> dict[str, Any]:
    """``--batch-size auto``: the knee of training throughput against batch size, from the profile's start."""
    from dlbench.measure.batch_sweep import sweep
    from dlbench.measure.profiles import get_profile

    profile = get_profile(case["profile"])

    def make_session(batch: int) -> GuardedSession:
        return GuardedSession(_prepare(plugin, framework, setup_of(spec, data, case, batch)), plugin)

    found = sweep(make_session, len(data.x_train), profile.auto_batch_start, profile.sweep_block_s)
    if found["knee"] is None:
        raise CaseFailed(f"--batch-size auto: {found['stopped']}")
    return found


def _prepare(plugin: str, framework: Any, setup: Any) -> Any:
    """The plugin's session. Its FrameworkUnavailable ("cannot run this case here: why") skips the case, as does
    a build error naming a layer kind of the model it lacks (CaseUnsupported: a plugin older than the zoo)."""
    try:
        return plugin_call(plugin, "prepare", framework.prepare, setup)
    except PluginFailed as exc:
        if isinstance(exc.__cause__, FrameworkUnavailable):
            raise CaseSkipped(f"plugin {plugin} cannot run this case here: {exc.__cause__}") from None
        kind = unknown_layer_kind(setup.spec, exc.__cause__)
        if kind is None:
            raise
        raise CaseUnsupported(f"unsupported: plugin {plugin} cannot build {setup.spec.name}, layer kind {kind!r} "
                              f"(its prepare said {str(exc).split(': ', 1)[-1]})") from None


def _framework(registry: Any, name: str) -> Any:
    try:
        return registry.get(name)
    except UnknownName as exc:
        broken = [p for p in registry.plugins if p.error]
        detail = "; ".join(f"plugin {p.name}: {p.error}" for p in broken)
        raise CaseFailed(f"{exc}{'; ' + detail if detail else ''}") from None


def _load_data(case: dict[str, Any]) -> tuple[Any, float]:
    from dlbench.data import load_task

    started = time.perf_counter()
    try:
        if case.get("shipped_data"):  # a Ray node without the data set: the driver's arrays (executors.shipping)
            from dlbench.data.shipping import load_shipped

            data = load_shipped(case["shipped_data"], case["task"], case["seed"], case.get("augment", False))
        else:
            data = load_task(case["task"], case.get("data_dir"), seed=case["seed"],
                             augment=case.get("augment", False))
    except DataError as exc:
        raise CaseFailed(str(exc)) from None
    return data, time.perf_counter() - started


def _process_age_s() -> Optional[float]:
    """Seconds since this process started (Linux /proc, 10 ms ticks); None elsewhere."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            started_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
            return round(max(0.0, float(uptime.read().split()[0]) - started_ticks / os.sysconf("SC_CLK_TCK")), 3)
    except (OSError, ValueError, IndexError):
        return None


def _median(values: list[float]) -> Optional[float]:
    import statistics

    return statistics.median(values) if values else None


def _lap(clock: list[float]) -> float:
    """Seconds since the previous lap; ``clock`` holds the last lap's time."""
    now = time.perf_counter()
    elapsed, clock[0] = now - clock[0], now
    return elapsed


def main(argv: Optional[list[str]] = None, started_at: float = STARTED_AT) -> int:
    """Run the case file ``argv[0]``, write the result to ``argv[1]``; ``started_at``: when this worker's first
    line ran (a forked worker's starts at the fork), reported with the result as ``clock``."""
    argv = sys.argv[1:] if argv is None else argv
    case_path, result_path = Path(argv[0]), Path(argv[1])
    case = json.loads(case_path.read_text())
    try:
        result = run_case(case)
    except CaseSkipped as exc:  # cannot run here, or a model the plugin does not build (yet): a reason, not a failure
        result = {"status": "skipped", "error": str(exc)}
    except CaseFailed as exc:
        if exc.__cause__ is not None:
            import traceback

            traceback.print_exception(exc.__cause__, file=sys.stderr)
        result = {"status": "failed", "error": str(exc)}
    except Exception as exc:  # a harness bug: still a record, with the traceback in the log
        import traceback

        traceback.print_exc(file=sys.stderr)
        result = {"status": "failed", "error": f"dlbench internal error: {type(exc).__name__}: {exc}"}
    tmp = result_path.with_suffix(".tmp")
    from dlbench.results import clean_numbers

    result["clock"] = {"started": started_at, "finished": time.time()}

    tmp.write_text(json.dumps(clean_numbers(result), default=str))
    os.replace(tmp, result_path)
    return 0


if __name__ == "__main__":
    exit_code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The result is on disk; skip the interpreter's teardown, in which TensorFlow and torch spend 0.8-1.4 s
    # per case unwinding thread pools (a tenth of a quick --all run).
    os._exit(exit_code)
