"""Made-up run histories (many runs of the same cases) for the publish tests and benchmark.

Built on ``samples.make_record``: every number behaves like a real record's under every statistic.
A ``factor(run, case)`` callable plants changes; ``version(run)`` says which framework version a run used.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional

from dlbench.testing.samples import make_record

START = datetime(2025, 1, 1, 2, 0, tzinfo=timezone.utc)


def history_cases(count: int, frameworks: tuple[str, ...] = ("pytorch", "keras")) -> list[dict[str, Any]]:
    """``count`` distinct cases (framework x model x batch size), each with its own true throughput."""
    models = ("softmax", "mlp", "mlp64", "cnn", "cnn_dropout", "cnn3", "cnn_bn", "lstm")
    cases = []
    for i in range(count):
        framework = frameworks[i % len(frameworks)]
        model = models[(i // len(frameworks)) % len(models)]
        batch = 32 * 2 ** (i // (len(frameworks) * len(models)))
        cases.append(dict(framework=framework, variant="eager" if framework == "pytorch" else "fit", model=model,
                          task="synthetic_text" if model == "lstm" else "digits", batch_size=batch,
                          train=1000.0 * (1 + i % 7), infer=8000.0 * (1 + i % 5), latency_ms=0.2 + 0.05 * (i % 9)))
    return cases


def make_run(index: int, cases: list[dict[str, Any]], *, repeats: int = 1, seed: int = 0, noise: float = 0.02,
             version: Optional[Callable[[int], str]] = None,
             factor: Optional[Callable[[int, dict[str, Any]], float]] = None,
             hours_apart: float = 24.0, env: Optional[dict[str, Any]] = None, threads: int = 2,
             blocks: int = 10) -> list[dict[str, Any]]:
    """The records of run number ``index`` of a history: same cases, a date ``hours_apart`` later."""
    rng = random.Random(seed * 1_000_003 + index)
    when = START + timedelta(hours=hours_apart * index)
    run_id = f"{when:%Y%m%d-%H%M%S}-{index:04x}"
    framework_version = version(index) if version else "1.0.0"
    records = []
    for case in cases:
        k = factor(index, case) if factor else 1.0
        args = {**case, "train": case.get("train", 1000.0) * k, "infer": case.get("infer", 8000.0) * k,
                "latency_ms": case.get("latency_ms", 0.5) / k}
        for repeat in range(repeats):
            record = make_record(**args, repeat=repeat, rng=rng, run_id=run_id, noise=noise, blocks=blocks,
                                 threads=threads)
            record["started_at"] = (when + timedelta(minutes=repeat)).isoformat()
            record["framework_version"] = framework_version
            record["fairness"] = {**record["fairness"], "threads": threads,
                                  "framework_versions": {record["framework"]: framework_version}}
            if env:
                record["env"] = {**record["env"], **env}
            records.append(record)
    return records


def make_history(runs: int, cases: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
    """All records of ``runs`` runs (see ``make_run`` for the options)."""
    return [record for index in range(runs) for record in make_run(index, cases, **options)]
