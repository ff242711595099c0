"""Valid, made-up result records (schema 1) for tests and demos of tables, reports and comparisons.

Throughputs get seeded multiplicative noise per timed block and per repeat, and every derived field
(median, CI, IQR, noisy flag) is computed the way the worker computes it, so the records behave like
real ones under every statistic.
"""

from __future__ import annotations

import random
from typing import Any, Optional

from dlbench.measure.metrics import derive_metrics
from dlbench.results import SCHEMA_VERSION, case_id

ENV = {"python": "3.11.7", "platform": "Linux-6.1-x86_64", "cpu": "Example CPU @ 2.0GHz", "cores": 2,
       "gpu": [], "dlbench_version": "0.1.0", "git_commit": "0123456789abcdef", "hostname": "bench-1"}


def make_record(framework: str = "pytorch", model: str = "cnn", task: str = "digits", *, variant: str = "eager",
                device: str = "cpu", batch_size: int = 64, repeat: int = 0, status: str = "ok",
                error: Optional[str] = None, train: float = 1000.0, infer: float = 8000.0,
                latency_ms: float = 0.5, accuracy: float = 0.95, tta_s: Optional[float] = 3.0,
                noise: float = 0.02, blocks: int = 10, rng: Optional[random.Random] = None,
                run_id: str = "20250101-120000-abcd", synthetic: Optional[bool] = None,
                **overrides: Any) -> dict[str, Any]:
    """One record; ``train``/``infer`` are the true samples/s around which the blocks are drawn."""
    rng = rng or random.Random(0)
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "repeat": repeat, "framework": framework,
        "framework_version": "1.0.0" if status != "skipped" else "",
        "plugin": {"name": framework, "dist": "dlbench", "dist_version": "0.1.0"},
        "variant": variant, "model": model, "task": task,
        "synthetic": task.startswith("synthetic") if synthetic is None else synthetic,
        "device": device, "batch_size": batch_size, "threads": 2, "seed": repeat, "profile": "quick",
        "status": status, "error": error if status != "ok" else None,
        "stderr_tail": "" if status == "ok" else "Traceback (most recent call last):\n  ...\nRuntimeError: boom",
        "started_at": f"2025-01-01T12:{repeat:02d}:00+00:00", "wall_s": 12.5, "metrics": {},
        "fairness": {"threads": 2, "dtype": "float32", "compile": variant, "sync": "none (cpu)",
                     f"{framework}_threads": {"intra_op": 2, "inter_op": 1}},
        "data": {"pipeline": "test data", "source": "generated", "train": 1000, "val": 100, "test": 200,
                 "augment_s": 0.0},
        "env": dict(ENV),
    }
    if status == "ok":
        record["metrics"] = _metrics(rng, train, infer, latency_ms, accuracy, tta_s, noise, blocks, batch_size)
    record.update(overrides)
    record["case_id"] = case_id(record)
    return record


def _metrics(rng: random.Random, train: float, infer: float, latency_ms: float, accuracy: float,
             tta_s: Optional[float], noise: float, blocks: int, batch_size: int) -> dict[str, Any]:
    level = 1 + noise * rng.gauss(0, 1)  # this repeat's own offset (process-to-process variation)
    metrics: dict[str, Any] = {}
    for prefix, true_rate in (("train", train), ("infer", infer)):
        metrics[f"{prefix}_blocks"] = [max(true_rate * level * (1 + noise * rng.gauss(0, 1)), 1e-6)
                                       for _ in range(blocks)]
    p50 = latency_ms / level
    metrics.update({
        "train_steps": blocks * 20 + 1, "block_steps": 20, "first_step_s": 0.8 + 0.1 * rng.random(),
        "infer_batch_size": 1024,
        "latency_ms": {"p50": p50, "p90": p50 * 1.3, "p99": p50 * 2.1, "mean": p50 * 1.1, "count": 200},
        "accuracy": min(1.0, max(0.0, accuracy + 0.005 * rng.gauss(0, 1))), "loss": 0.2, "val_accuracy": accuracy,
        "initial_loss": 2.31, "expected_initial_loss": 2.302585, "target_accuracy": 0.9,
        "time_to_accuracy_s": None if tta_s is None else tta_s * (1 + noise * rng.gauss(0, 1)),
        "params": 110_000, "flops_per_sample": 2_000_000, "peak_memory_mb": 512.0, "load_s": 0.1,
        "prepare_s": 0.2,
    })
    return derive_metrics(metrics, batch_size)


def make_records(cases: list[dict[str, Any]], repeats: int = 3, seed: int = 0, **common: Any) -> list[dict[str, Any]]:
    """``repeats`` records of every case (a dict of make_record arguments), from one seeded RNG."""
    rng = random.Random(seed)
    return [make_record(**{**common, **case}, repeat=r, rng=rng) for case in cases for r in range(repeats)]
