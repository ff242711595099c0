"""``dlbench export --format pytest-benchmark``: results as a pytest-benchmark saved run.

One benchmark per case that trained: its data are seconds per training step, one value per timed
block (block time / block_steps = batch_size / block samples/s), pooled over repeats, so
``pytest-benchmark compare`` can tabulate, sort and compare dlbench runs like its own. The statistics
are computed exactly as pytest_benchmark.stats.Stats does (checked by the tests), without importing
pytest-benchmark, which dlbench does not depend on.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left, bisect_right
from datetime import datetime, timezone
from typing import Any, Iterable, Optional

from dlbench.report.summary import group_cases, metric_blocks, metric_value
from dlbench.results import CASE_KEYS

FORMATS = ("pytest-benchmark",)


def stats(data: list[float]) -> dict[str, Any]:
    """pytest-benchmark's Stats.as_dict() for ``data`` (same quartile method, same outlier counts)."""
    ordered = sorted(data)
    n = len(ordered)
    mean = statistics.mean(data)
    stddev = statistics.stdev(data) if n > 1 else 0
    if n == 1:
        q1 = q3 = ordered[0]
    elif n % 2:  # method 3 of https://en.wikipedia.org/wiki/Quartile#Computing_methods
        m, q = n // 4, n % 4
        if q == 1:
            q1 = 0.25 * ordered[m - 1] + 0.75 * ordered[m]
            q3 = 0.75 * ordered[3 * m] + 0.25 * ordered[3 * m + 1]
        else:
            q1 = 0.75 * ordered[m] + 0.25 * ordered[m + 1]
            q3 = 0.25 * ordered[3 * m + 1] + 0.75 * ordered[3 * m + 2]
    else:  # method 2
        q1 = statistics.median(ordered[: n // 2])
        q3 = statistics.median(ordered[n // 2:])
    iqr = q3 - q1
    low_fence, high_fence = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    iqr_outliers = sum(1 for v in ordered if v < low_fence or v > high_fence)
    stddev_outliers = sum(1 for v in ordered if v < mean - stddev or v > mean + stddev)
    total = sum(data)  # in the given order, as pytest-benchmark adds them
    return {
        "min": ordered[0], "max": ordered[-1], "mean": mean, "stddev": stddev, "rounds": n,
        "median": statistics.median(data), "iqr": iqr, "q1": q1, "q3": q3, "iqr_outliers": iqr_outliers,
        "stddev_outliers": stddev_outliers, "outliers": f"{stddev_outliers};{iqr_outliers}",
        "ld15iqr": ordered[0] if n == 1 else ordered[bisect_left(ordered, low_fence)],
        "hd15iqr": ordered[0] if n == 1 else ordered[bisect_right(ordered, high_fence) - 1],
        "ops": n / total if total else 0, "total": total,
    }


def _step_times(record: dict[str, Any]) -> list[float]:
    """Seconds per training step of one record: per block when it has blocks, else from its median."""
    batch = record["batch_size"]
    blocks = [b for b in metric_blocks(record, "train_samples_per_s") if b > 0]
    if blocks:
        return [batch / b for b in blocks]
    rate = metric_value(record, "train_samples_per_s")
    return [batch / rate] if rate else []


def _benchmark(case: str, records: list[dict[str, Any]]) -> Optional[dict[str, Any]]:
    ok = [r for r in records if r["status"] == "ok"]
    data = [t for r in ok for t in _step_times(r)]
    if not data:
        return None
    first = ok[0]
    block_steps = next((int(s) for r in ok if isinstance(s := (r.get("metrics") or {}).get("block_steps"), int)
                        and s > 0), 1)
    return {
        "group": f"{first['task']}/{first['model']}/{first['device']}/bs{first['batch_size']}",
        "name": f"train[{case}]",
        "fullname": f"dlbench::train[{case}]",
        "params": {key: first[key] for key in CASE_KEYS},
        "param": case,
        "extra_info": {"unit": "seconds per training step", "samples_per_step": first["batch_size"],
                       "framework_version": first.get("framework_version", ""),
                       "train_samples_per_s": [metric_value(r, "train_samples_per_s") for r in ok],
                       "accuracy": [metric_value(r, "accuracy") for r in ok],
                       "noisy": any((r.get("metrics") or {}).get("noisy") is True for r in ok),
                       "synthetic": any(r.get("synthetic") is True for r in ok),
                       "repeats": len(ok), "run_ids": sorted({str(r.get("run_id")) for r in ok})},
        "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": len(data), "max_time": 0,
                    "min_time": 0, "warmup": True, "source": "dlbench blocked timing"},
        "stats": {**stats(data), "data": data, "iterations": block_steps},
    }


def _pytest_benchmark_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("pytest-benchmark")
    except metadata.PackageNotFoundError:
        return "5.1.0"


def to_pytest_benchmark(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A dict in pytest-benchmark's saved-run JSON format (``--benchmark-json`` / ``--benchmark-save``)."""
    records = list(records)
    env = next((r["env"] for r in records if isinstance(r.get("env"), dict)), {})
    benchmarks = [b for case, group in group_cases(records).items() if (b := _benchmark(case, group))]
    started = sorted(str(r["started_at"]) for r in records if r.get("started_at"))
    commit = str(env.get("git_commit") or "unversioned")
    return {
        "machine_info": {
            "node": str(env.get("hostname", "")), "processor": str(env.get("cpu", "")),
            "machine": "", "python_compiler": "",
            "python_implementation": "CPython", "python_implementation_version": str(env.get("python", "")),
            "python_version": str(env.get("python", "")), "python_build": [],
            "release": "", "system": str(env.get("platform", "")),
            "cpu": {"brand_raw": str(env.get("cpu", "")), "count": env.get("cores", 0)},
        },
        "commit_info": {"id": commit.removesuffix("+dirty"), "time": None, "author_time": None,
                        "dirty": commit.endswith("+dirty"), "project": "dlbench", "branch": "(unknown)"},
        "benchmarks": benchmarks,
        "datetime": started[0] if started else datetime.now(timezone.utc).isoformat(),
        "version": _pytest_benchmark_version(),
    }
