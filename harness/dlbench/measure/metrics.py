"""Numbers derived from what was measured: block summaries, compile time, achieved GFLOP/s, the noisy flag.

One function, used by the worker on live measurements and by anything that makes or recomputes
records (the sample records of tests and demos), so a derived number has one definition.
"""

from __future__ import annotations

from typing import Any

from dlbench.machine.state import paging_flag, wait_flag
from dlbench.stats.estimators import DEFAULT_ESTIMATOR, NOISY_IQR_RATIO, estimate, rate_summary

TRAINING_FLOPS_FACTOR = 3  # forward + backward counted as three forward passes


def derive_metrics(metrics: dict[str, Any], batch_size: int) -> dict[str, Any]:
    """Add the derived fields to ``metrics`` and return it.

    Reads ``train_blocks`` / ``infer_blocks`` (samples/s of each timed block), ``first_step_s`` and
    ``flops_per_sample``; ``batch_size`` is the training batch. Fields whose inputs are missing are left out.
    """
    estimator = metrics.setdefault("estimator", DEFAULT_ESTIMATOR)
    for prefix in ("train", "infer"):
        blocks = metrics.get(f"{prefix}_blocks")
        if blocks:
            metrics.update(rate_summary(prefix, blocks, estimator))
        cpu_blocks = metrics.get(f"{prefix}_cpu_blocks")
        if cpu_blocks:  # the same estimator on the CPU clock (dlbench.measure.device_meters)
            metrics[f"{prefix}_cpu_samples_per_s"] = estimate(cpu_blocks, estimator)
    flops = metrics.get("flops_per_sample")
    train_rate = metrics.get("train_samples_per_s")
    if train_rate:
        if metrics.get("first_step_s") is not None:
            steady_step_s = batch_size / train_rate
            metrics["compile_s"] = max(0.0, metrics["first_step_s"] - steady_step_s)
        if flops:
            metrics["train_gflops_per_s"] = TRAINING_FLOPS_FACTOR * flops * train_rate / 1e9
    if flops and metrics.get("train_bytes_per_sample"):  # training FLOPs per byte moved (measure.roofline)
        metrics["train_flops_per_byte"] = TRAINING_FLOPS_FACTOR * flops / metrics["train_bytes_per_sample"]
    infer_rate = metrics.get("infer_samples_per_s")
    if infer_rate and flops:
        metrics["infer_gflops_per_s"] = flops * infer_rate / 1e9
    target = metrics.get("ci_target")
    for prefix in ("train", "infer"):
        if target and metrics.get(f"{prefix}_blocks"):
            half = metrics.get(f"{prefix}_ci_half_rel")
            metrics[f"{prefix}_ci_reached"] = half is not None and half <= target
    machine = metrics.get("machine_state")
    if isinstance(machine, dict):  # why the timed window was disturbed: ["steal 14%", "load 1.3 cores"]
        metrics["disturbed"] = [str(reason) for reason in machine.get("flags") or []]
    observed = metrics.get("threads_observed")
    waited = wait_flag(observed.get("cpu_share"), observed.get("timed_s")) if isinstance(observed, dict) else None
    if waited:  # the worker's own core was shared, which the machine-wide load can miss (a pinned core)
        metrics.setdefault("disturbed", []).append(waited)
    paging = paging_flag(metrics.get("train_faults_per_step"))
    if paging:  # the allocator's regime, drawn per process without dlbench's thresholds (machine.state.paging_flag)
        metrics.setdefault("disturbed", []).append(paging)
    metrics["noisy"] = any((metrics.get(f"{p}_iqr_rel") or 0) > NOISY_IQR_RATIO for p in ("train", "infer"))
    return metrics
