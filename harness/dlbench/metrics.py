"""Numbers derived from what was measured: block summaries, compile time, achieved GFLOP/s, the noisy flag.

One function, used by the worker on live measurements and by anything that makes or recomputes
records (the sample records of tests and demos), so a derived number has one definition.
"""

from __future__ import annotations

from typing import Any, Sequence

from dlbench.stats import NOISY_IQR_RATIO, summarise

TRAINING_FLOPS_FACTOR = 3  # forward + backward counted as three forward passes


def rate_summary(prefix: str, rates: Sequence[float]) -> dict[str, Any]:
    """``{prefix}_samples_per_s`` (median over blocks), its CI, relative IQR and the per-block rates."""
    summary = summarise(list(rates))
    if summary is None:
        return {}
    return {f"{prefix}_samples_per_s": summary.median, f"{prefix}_ci95": list(summary.ci95),
            f"{prefix}_iqr_rel": summary.iqr_rel, f"{prefix}_blocks": list(rates)}


def derive_metrics(metrics: dict[str, Any], batch_size: int) -> dict[str, Any]:
    """Add the derived fields to ``metrics`` and return it.

    Reads ``train_blocks`` / ``infer_blocks`` (samples/s of each timed block), ``first_step_s`` and
    ``flops_per_sample``; ``batch_size`` is the training batch. Fields whose inputs are missing are left out.
    """
    for prefix in ("train", "infer"):
        blocks = metrics.get(f"{prefix}_blocks")
        if blocks:
            metrics.update(rate_summary(prefix, blocks))
    flops = metrics.get("flops_per_sample")
    train_rate = metrics.get("train_samples_per_s")
    if train_rate:
        if metrics.get("first_step_s") is not None:
            steady_step_s = batch_size / train_rate
            metrics["compile_s"] = max(0.0, metrics["first_step_s"] - steady_step_s)
        if flops:
            metrics["train_gflops_per_s"] = TRAINING_FLOPS_FACTOR * flops * train_rate / 1e9
    infer_rate = metrics.get("infer_samples_per_s")
    if infer_rate and flops:
        metrics["infer_gflops_per_s"] = flops * infer_rate / 1e9
    metrics["noisy"] = any((metrics.get(f"{p}_iqr_rel") or 0) > NOISY_IQR_RATIO for p in ("train", "infer"))
    return metrics
