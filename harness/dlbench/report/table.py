"""One row per case over its repeats (``summarise``) and the framework-against-framework table.

A case is summarised by the median over its ok repeats. Its 95% CI comes from the record itself when
there is a single repeat (order statistics over timed blocks), otherwise from the repeat values
(distribution-free CI of the median, which is simply [min, max] for fewer than six repeats).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Optional

from dlbench.report import _format as f
from dlbench.results import CASE_KEYS, case_id
from dlbench.report.trust import TRUST_COLUMNS, legend, peak_cell, trust_columns
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
    "batch_order", "busy_threads", "over_thread_budget",
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
    """``summarise``'s rows as dicts, without pandas: ``dlbench publish`` summarises thousands of runs."""
    from dlbench.machine.identity import kind_of

    records = [r for r in records if not r.get("retried")]  # a crashed attempt that was run again
    by_machine: dict[tuple[str, str], list[dict[str, Any]]] = {}  # the same case on two machines: two rows
    for cid, group in group_cases(records).items():
        for record in group:
            by_machine.setdefault((cid, kind_of(record)), []).append(record)
    rows = [{**_summarise_case(cid, group), "machine": machine} for (cid, machine), group in by_machine.items()]
    rows.sort(key=_row_order)
    return rows


def _row_order(row: dict[str, Any]) -> tuple:
    from dlbench.zoo import MODELS

    zoo = list(MODELS)
    model = str(row["model"])
    return (str(row.get("machine", "")), str(row["task"]), zoo.index(model) if model in zoo else len(zoo), model,
            str(row["framework"]),
            str(row["variant"]), str(row["device"]), row["batch_size"])


def _summarise_case(cid: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in records if r["status"] == "ok"]
    bad = [r for r in records if r["status"] != "ok"]
    row: dict[str, Any] = {"case_id": cid, **{key: records[0][key] for key in CASE_KEYS}}
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


OWN_ORDER_MARK = "^"  # trained on the plugin's own batch order, not the harness's stream
OVER_BUDGET_MARK = "!"  # more busy threads than the thread budget


@dataclass
class Grid:
    """A rendered comparison table before tabulate/HTML: header, rows of strings, notes below."""

    headers: list[str]
    rows: list[list[str]]
    align: list[str]
    notes: list[str] = field(default_factory=list)
    not_measured: list[str] = field(default_factory=list)
    key_columns: int = 2  # task, model (, device, batch): the columns before the framework groups
    labels: list[str] = field(default_factory=list)  # one group of FRAMEWORK_COLUMNS per label


FRAMEWORK_COLUMNS = ("acc", "train/s", "infer/s", "p50 ms", "% peak", "speed")


def framework_labels(summary: "pd.DataFrame") -> dict[tuple[str, str], str]:
    """(framework, variant) -> column label: the framework, or framework/variant when it ran several."""
    variants: dict[str, list[str]] = {}
    for fw, variant in zip(summary["framework"], summary["variant"]):
        variants.setdefault(str(fw), [])
        if str(variant) not in variants[str(fw)]:
            variants[str(fw)].append(str(variant))
    return {(fw, v): (fw if len(variants[fw]) == 1 else f"{fw}/{v}") for fw in sorted(variants) for v in variants[fw]}


def comparison_grid(summary: "pd.DataFrame") -> Grid:
    """One row per task x model (x device x batch when those vary), a column group per framework."""
    labels = framework_labels(summary)
    many_devices = summary["device"].nunique() > 1
    many_batches = summary["batch_size"].nunique() > 1
    many_machines = "machine" in summary and summary["machine"].nunique() > 1  # a row per machine: no ratio across
    headers = (["machine"] if many_machines else []) + ["task", "model"] + (["device"] if many_devices else []) + \
        (["batch"] if many_batches else [])
    key_columns = len(headers)
    for label in dict.fromkeys(labels.values()):
        headers += [f"{label} {column}" for column in FRAMEWORK_COLUMNS]
    grid = Grid(headers, [], ["left"] * key_columns + ["right"] * (len(headers) - key_columns),
                key_columns=key_columns, labels=list(dict.fromkeys(labels.values())))

    by_row: dict[tuple, dict[str, dict[str, Any]]] = {}
    synthetic: dict[tuple, bool] = {}
    for row in summary.to_dict("records"):
        key = (row.get("machine", ""), row["task"], row["model"], row["device"], row["batch_size"])
        by_row.setdefault(key, {})[labels[(str(row["framework"]), str(row["variant"]))]] = row
        synthetic[key] = synthetic.get(key, False) or bool(row["synthetic"])
        if row["error"]:
            grid.not_measured.append(f"{row['case_id']}: {row['status'] if not row['n_ok'] else 'partly ok'}"
                                     f" — {row['error']}")
    any_noisy = own_order = over_budget = False
    for key, cells in by_row.items():
        machine, task, model, device, batch = key
        line = ([str(machine)] if many_machines else []) + \
            [f"{task} (synthetic)" if synthetic[key] else str(task), str(model)]
        line += ([str(device)] if many_devices else []) + ([str(batch)] if many_batches else [])
        speeds = [f.number(c["train_samples_per_s"]) for c in cells.values() if c["n_ok"]]
        fastest = max((s for s in speeds if s is not None), default=None)
        for label in dict.fromkeys(labels.values()):
            cell = cells.get(label)
            if cell is None:
                line += [""] * len(FRAMEWORK_COLUMNS)
                continue
            if not cell["n_ok"]:
                line += [str(cell["status"])] + [f.DASH] * (len(FRAMEWORK_COLUMNS) - 1)
                continue
            mark = "~" if cell["noisy"] or cell.get("disturbed") else ""
            any_noisy = any_noisy or bool(cell["noisy"])
            if str(cell.get("batch_order", "unknown")) not in ("harness", "unknown"):
                mark, own_order = OWN_ORDER_MARK + mark, True
            if cell.get("over_thread_budget") is True:
                mark, over_budget = OVER_BUDGET_MARK + mark, True
            train = f.number(cell["train_samples_per_s"])
            relative = train / fastest if train is not None and fastest else None
            line += [f.percent(cell["accuracy"]),
                     mark + f.rate(train) if train is not None else f.DASH,
                     mark + f.rate(cell["infer_samples_per_s"])
                     if f.number(cell["infer_samples_per_s"]) is not None else f.DASH,
                     f.ms(cell["latency_p50_ms"]),
                     peak_cell(cell.get("train_peak_pct")),
                     f.ratio(relative)]
        grid.rows.append(line)

    grid.notes.append("acc: test accuracy after the training budget; train/s: steady-state training samples/s; "
                      "infer/s: Offline inference samples/s; p50 ms: SingleStream latency at batch 1 (medians "
                      "over repeats)")
    if len(set(labels.values())) > 1:
        grid.notes.append("speed: training samples/s relative to the fastest framework on the row")
    if many_machines:
        grid.notes.append("machine: the results span several kinds of machine; each row is one machine's, and no "
                          "ratio is taken across machines")
    if any_noisy:
        grid.notes.append("~ noisy: IQR/median above 10% over timed blocks or repeats; differences within that "
                          "spread are not meaningful")
    grid.notes += legend([row for cells in by_row.values() for row in cells.values()],
                         label=lambda row: f"{row['framework']} {row['model']} on {row['task']}")
    if own_order:
        grid.notes.append(f"{OWN_ORDER_MARK} own order: the plugin drew its own training batches instead of the "
                          "harness's stream, so it did not see the same batches as the others")
    if over_budget:
        grid.notes.append(f"{OVER_BUDGET_MARK} over budget: the case kept more threads' worth of CPU busy during "
                          "the timed blocks than the thread budget allows, the machine's load divided out "
                          "(metrics.threads_observed.concurrency)")
    if any(synthetic.values()):
        grid.notes.append("(synthetic): generated data; its accuracy says little about real tasks")
    return grid


def comparison_table(records: Iterable[dict[str, Any]], fmt: str = "github") -> str:
    """The end-of-run table: a row per model x task, per framework accuracy, throughput, latency, speed.

    ``fmt`` is any tabulate format (github, pipe, simple, grid, latex, html, ...). Failed and skipped
    cases are listed below the table with their reasons.
    """
    from tabulate import tabulate, tabulate_formats

    if fmt not in tabulate_formats:
        raise ValueError(f"unknown table format {fmt!r}; choose from {', '.join(sorted(tabulate_formats))}")
    records = list(records)
    if not records:
        return "no results"
    grid = comparison_grid(summarise(records))
    rows, headers = grid.rows, grid.headers
    if fmt in ("github", "pipe"):  # a '|' in a name would split the markdown cell
        rows = [[cell.replace("|", "\\|") for cell in row] for row in rows]
        headers = [h.replace("|", "\\|") for h in headers]
    parts = []
    if rows:
        parts.append(tabulate(rows, headers, tablefmt=fmt, colalign=grid.align, disable_numparse=True))
    footer = list(grid.notes)
    if grid.not_measured:
        footer.append("Not measured:")
        footer += [f"  - {line}" for line in grid.not_measured]
    if fmt in ("html", "unsafehtml"):
        import html

        footer = [f"<p>{html.escape(line)}</p>" for line in footer]
    parts.append("\n".join(footer))
    if fmt not in ("html", "unsafehtml"):
        from dlbench.report.device import device_text

        parts.append(device_text(records, fmt))  # "" unless a case measured device memory, energy or events
    from dlbench.report.scenarios import scenario_section

    parts.append(scenario_section(records, fmt))  # "" unless a case ran --inference loadgen
    return "\n\n".join(part for part in parts if part)
