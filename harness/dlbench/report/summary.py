"""One row per case over its repeats: ``summarise``, and how a metric is read from a record.

A case is summarised by the median over its ok repeats. Its 95% CI comes from the record itself when
there is a single repeat (order statistics over timed blocks), otherwise from the repeat values
(distribution-free CI of the median, which is simply [min, max] for fewer than six repeats). Every table,
section and page of a report starts from these rows; this module knows nothing of how they are shown.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Iterable, Optional

from dlbench.report import format as f
from dlbench.report.trust import TRUST_COLUMNS, trust_columns
from dlbench.results import CASE_KEYS, case_id
from dlbench.stats.estimators import NOISY_IQR_RATIO, median, median_ci, percentile

if TYPE_CHECKING:
    import pandas as pd

NAN = float("nan")


# summary columns taken from the metrics; "latency_p50_ms" reads metrics.latency_ms.p50
METRICS = ("accuracy", "loss", "val_accuracy", "target_accuracy", "train_samples_per_s", "infer_samples_per_s",
           "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_mean_ms", "compile_s",
           "first_step_s", "time_to_accuracy_s", "train_gflops_per_s", "infer_gflops_per_s", "peak_memory_mb",
           "peak_device_memory_mb", "params", "flops_per_sample")


# metrics that also get <metric>_ci_lo / <metric>_ci_hi columns
CI_METRICS = ("accuracy", "train_samples_per_s", "infer_samples_per_s", "latency_p50_ms", "latency_p99_ms",
              "time_to_accuracy_s")


# a single repeat's own CI over its timed blocks
RECORD_CI = {"train_samples_per_s": "train_ci95", "infer_samples_per_s": "infer_ci95"}


SPREAD = {"train_samples_per_s": "train_iqr_rel", "infer_samples_per_s": "infer_iqr_rel"}


SUMMARY_COLUMNS = (
    "case_id", *CASE_KEYS, "machine", "framework_version", "status", "error", "synthetic", "n_repeats", "n_ok", "noisy",
    "batch_order", "busy_threads", "over_thread_budget", "batch_auto",
    "train_iqr_rel", "infer_iqr_rel", "tta_reached", *TRUST_COLUMNS,
    *[column for metric in METRICS
      for column in ((metric, f"{metric}_ci_lo", f"{metric}_ci_hi") if metric in CI_METRICS else (metric,))],
)


def metric_value(record: dict[str, Any], name: str) -> Optional[float]:
    """One metric of one record as a finite float, or None (absent, null, not a number)."""
    metrics = record.get("metrics") or {}
    if name.startswith("latency_") and name.endswith("_ms"):
        latency = metrics.get("latency_ms")
        return f.number(latency.get(name[len("latency_"):-len("_ms")])) if isinstance(latency, dict) else None
    return f.number(metrics.get(name))


def metric_blocks(record: dict[str, Any], name: str) -> list[float]:
    """Per-block samples of a throughput metric (``train_blocks`` / ``infer_blocks``), else []."""
    prefix = {"train_samples_per_s": "train", "infer_samples_per_s": "infer"}.get(name)
    blocks = (record.get("metrics") or {}).get(f"{prefix}_blocks") if prefix else None
    if not isinstance(blocks, list):
        return []
    return [v for v in map(f.number, blocks) if v is not None]


def record_ci(record: dict[str, Any], name: str) -> Optional[tuple[float, float]]:
    """The record's own 95% CI of a throughput metric over its blocks, when it has a valid one."""
    key = RECORD_CI.get(name)
    ci = (record.get("metrics") or {}).get(key) if key else None
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        lo, hi = f.number(ci[0]), f.number(ci[1])
        if lo is not None and hi is not None and lo <= hi:
            return lo, hi
    return None


def relative_iqr(values: list[float]) -> float:
    mid = median(values)
    return (percentile(values, 75) - percentile(values, 25)) / mid if mid else NAN


def group_cases(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Records by case_id, in first-seen order (several files and repeats merge into one case)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(case_id(record), []).append(record)
    return groups


def summarise(records: Iterable[dict[str, Any]]) -> "pd.DataFrame":
    """One row per case (grouped by ``results.CASE_KEYS``) with medians over ok repeats, CIs and flags."""
    import pandas as pd

    return pd.DataFrame(summary_rows(records), columns=list(SUMMARY_COLUMNS))


def summary_rows(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``summarise``'s rows as dicts, without pandas: ``dlbench publish`` summarises thousands of runs.

    Records of one case under different comparability keys (machine, thread budget, device, measurement
    environment) are never pooled: each key gets its own row, named in ``machine`` by what differs.
    """
    from dlbench.machine.identity import key_of, short_labels

    records = [r for r in records if not r.get("retried")]  # a crashed attempt that was run again
    by_key: dict[tuple[str, Any], list[dict[str, Any]]] = {}  # the same case under two keys: two rows
    for cid, group in group_cases(records).items():
        for record in group:
            by_key.setdefault((cid, key_of(record)), []).append(record)
    labels = short_labels(key for _, key in by_key)
    rows = [{**_summarise_case(cid, group), "machine": labels[key]} for (cid, key), group in by_key.items()]
    rows.sort(key=row_order)
    return rows


def row_order(row: dict[str, Any]) -> tuple:
    from dlbench.zoo import MODELS

    zoo = list(MODELS)
    model = str(row["model"])
    return (str(row.get("machine", "")), str(row["task"]), zoo.index(model) if model in zoo else len(zoo), model,
            str(row["framework"]),
            str(row["variant"]), str(row["device"]), int(row["batch_size"]), bool(row.get("batch_auto")))


def _summarise_case(cid: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in records if r["status"] == "ok"]
    bad = [r for r in records if r["status"] != "ok"]
    row: dict[str, Any] = {"case_id": cid, **{key: (ok or records)[0][key] for key in CASE_KEYS}}
    row["batch_auto"] = any(r.get("batch_size_requested") == "auto" for r in records)  # batch_size: the knee
    row["framework_version"] = next((str(r.get("framework_version")) for r in ok + bad
                                     if r.get("framework_version")), "")
    row["synthetic"] = any(r.get("synthetic") is True for r in records)
    row["n_repeats"], row["n_ok"] = len(records), len(ok)
    row["status"] = "ok" if ok else Counter(r["status"] for r in bad).most_common(1)[0][0]
    row["error"] = ""
    if bad:
        reason = next((str(r["error"]) for r in bad if r.get("error")), "no reason recorded")
        statuses = "/".join(sorted({r["status"] for r in bad}))
        row["error"] = f"{len(bad)} of {len(records)} repeats {statuses}: {reason}" if ok else reason
    noisy = any((r.get("metrics") or {}).get("noisy") is True for r in ok)
    for metric in METRICS:
        values = [v for v in (metric_value(r, metric) for r in ok) if v is not None]
        row[metric] = median(values) if values else NAN
        if metric in CI_METRICS:
            ci = median_ci(values) if len(values) > 1 else None
            if len(values) == 1 and len(ok) == 1:
                ci = record_ci(ok[0], metric)
            row[f"{metric}_ci_lo"], row[f"{metric}_ci_hi"] = ci if ci else (NAN, NAN)
        if metric in SPREAD:
            if len(values) > 1:
                spread = relative_iqr(values)
            else:
                spread = f.number((ok[0].get("metrics") or {}).get(SPREAD[metric])) if len(ok) == 1 else None
            row[SPREAD[metric]] = NAN if spread is None else spread
            noisy = noisy or (spread is not None and spread > NOISY_IQR_RATIO)
    row["noisy"] = noisy
    row.update(fairness_flags(ok))
    row.update(trust_columns(ok))  # disturbed windows, CI target missed, % of the measured peak
    row["tta_reached"] = sum(metric_value(r, "time_to_accuracy_s") is not None for r in ok)
    return row


def fairness_flags(ok: list[dict[str, Any]]) -> dict[str, Any]:
    """What a case's ok repeats say about fairness: whose batch order it trained on, threads really busy.

    ``batch_order`` is "harness" only when every repeat trained on the harness's stream; records written
    before the stream existed have no such field and read "unknown" (not flagged).
    """
    orders = {str(r.get("batch_order") or "unknown") for r in ok}
    order = "harness" if orders == {"harness"} else "unknown" if orders <= {"unknown"} else \
        "/".join(sorted(orders - {"harness", "unknown"}))
    busy = [b for b in ((r.get("metrics") or {}).get("busy_threads") for r in ok) if isinstance(b, int)]
    over = any((r.get("metrics") or {}).get("over_thread_budget") is True for r in ok)
    return {"batch_order": order, "busy_threads": max(busy) if busy else NAN, "over_thread_budget": over}
