"""Runs ONE case in this (fresh) process and writes its result as JSON.

``python -m dlbench.worker CASE.json RESULT.json``. The parent (runner.py) owns the record; this
process only measures. A plugin exception fails the case with the phase, the plugin and the message.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any, Optional

class CaseFailed(Exception):
    """The case cannot be measured; the message is the record's one-line error."""


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """Measure one case; returns the worker's part of the record (status, metrics, fairness, data)."""
    from dlbench.data import DataError, load_task
    from dlbench.plugins import load_registry
    from dlbench.profiles import get_profile
    from dlbench.timing import measure_latency, measure_offline, measure_training, rate_summary, top_up_training
    from dlbench.zoo import get_model, target_for
    from dlbench.contract import Setup

    profile = get_profile(case["profile"])
    spec = get_model(case["model"])
    registry = load_registry()
    try:
        framework = registry.get(case["framework"])
    except KeyError as exc:
        broken = [p for p in registry.plugins if p.error]
        detail = "; ".join(f"plugin {p.name}: {p.error}" for p in broken)
        raise CaseFailed(f"{exc.args[0]}{'; ' + detail if detail else ''}") from None
    plugin = registry.owner[framework.name].name
    result: dict[str, Any] = {"framework_version": _call(plugin, "version", framework.version)}

    started = time.perf_counter()
    try:
        data = load_task(case["task"], case.get("data_dir"), seed=case["seed"], augment=case.get("augment", False))
    except DataError as exc:
        raise CaseFailed(str(exc)) from None
    load_s = time.perf_counter() - started
    result["data"] = {"pipeline": data.pipeline, "source": data.source, "train": len(data.x_train),
                      "val": len(data.x_val), "test": len(data.x_test), "augment_s": data.augment_s,
                      "synthetic": data.synthetic}

    setup = Setup(spec=spec, data=data, device=case["device"], variant=case["variant"], seed=case["seed"],
                  threads=case["threads"], batch_size=case["batch_size"], options=case.get("options", {}))
    started = time.perf_counter()
    session = _call(plugin, "prepare", framework.prepare, setup)
    prepare_s = time.perf_counter() - started

    expected_params = spec.param_count(data.input_shape)
    params = _call(plugin, "param_count", session.param_count)
    if params != expected_params:
        raise CaseFailed(f"parity: plugin {plugin} built {case['model']} with {params:,} trainable parameters, "
                         f"the zoo spec has {expected_params:,}")
    bs = case["batch_size"]
    clock = [time.perf_counter()]
    initial_loss, _ = _call(plugin, "evaluate", session.evaluate, data.x_train[:bs], data.y_train[:bs])
    expected_loss = spec.expected_initial_loss(data.num_classes)
    if not math.isfinite(initial_loss) or abs(initial_loss - expected_loss) > 0.5 * expected_loss:
        raise CaseFailed(f"parity: first-batch loss {initial_loss:.4g} is not near the expected "
                         f"{expected_loss:.4g} (ln of the class count); check the model's initialisation")

    steps = case.get("steps") or profile.steps_for(spec, case["task"], len(data.x_train), bs)
    target = case.get("target") or target_for(spec, case["task"])
    phases_s = {"load": load_s, "prepare": prepare_s, "parity": _lap(clock)}
    training = _call(plugin, "train", measure_training, session, data, bs, steps, profile, target)
    phases_s["train"] = _lap(clock)
    loss, accuracy = _call(plugin, "evaluate", session.evaluate, data.x_test, data.y_test)
    phases_s["test_eval"] = _lap(clock)
    extra_steps = _call(plugin, "train", top_up_training, session, training, bs, profile)
    phases_s["extra_timing"] = _lap(clock)
    infer_bs = case.get("infer_batch_size") or 1024
    offline = _call(plugin, "predict", measure_offline, session, data.x_test, infer_bs, profile)
    phases_s["offline"] = _lap(clock)
    latency = _call(plugin, "predict", measure_latency, session, data.x_test, profile)
    phases_s["latency"] = _lap(clock)

    metrics: dict[str, Any] = {
        **rate_summary("train", training.rates),
        **rate_summary("infer", offline.block_samples_per_s),
        "train_steps": training.steps, "block_steps": training.block_steps, "timing_extra_steps": extra_steps,
        "first_step_s": training.first_step_s,
        "infer_batch_size": infer_bs, "infer_first_call_s": offline.first_call_s,
        "latency_ms": latency,
        "accuracy": accuracy, "loss": loss, "val_accuracy": training.val_accuracy,
        "initial_loss": initial_loss, "expected_initial_loss": expected_loss,
        "target_accuracy": target, "time_to_accuracy_s": training.tta_s, "train_wall_s": training.end_s,
        "params": params, "flops_per_sample": spec.flops_per_sample(data.input_shape),
        "load_s": load_s, "prepare_s": prepare_s, "phases_s": phases_s,
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    if "train_samples_per_s" in metrics:
        steady_step_s = bs / metrics["train_samples_per_s"]
        metrics["compile_s"] = max(0.0, training.first_step_s - steady_step_s)
        metrics["train_gflops_per_s"] = 3 * metrics["flops_per_sample"] * metrics["train_samples_per_s"] / 1e9
    if "infer_samples_per_s" in metrics:
        metrics["infer_gflops_per_s"] = metrics["flops_per_sample"] * metrics["infer_samples_per_s"] / 1e9
    metrics["noisy"] = any(metrics.get(k, 0) > 0.10 for k in ("train_iqr_rel", "infer_iqr_rel"))
    device_peak = getattr(session, "peak_device_memory_mb", None)
    if callable(device_peak):
        metrics["peak_device_memory_mb"] = device_peak()
    result["metrics"] = metrics
    result["fairness"] = dict(_call(plugin, "describe", session.describe))
    result["status"] = "ok"
    return result


def _lap(clock: list[float]) -> float:
    """Seconds since the previous lap; ``clock`` holds the last lap's time."""
    now = time.perf_counter()
    elapsed, clock[0] = now - clock[0], now
    return elapsed


def _call(plugin: str, what: str, function: Any, *args: Any) -> Any:
    try:
        return function(*args)
    except CaseFailed:
        raise
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CaseFailed(f"plugin {plugin} failed in {what}: {type(exc).__name__}: {message}") from exc


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    case_path, result_path = Path(argv[0]), Path(argv[1])
    case = json.loads(case_path.read_text())
    try:
        result = run_case(case)
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
