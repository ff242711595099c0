"""What a report says, as plain-text tables (headers + rows of str), before any HTML or markdown.

The renderers (``site``) escape every cell; nothing here is markup, so a model named ``<script>``
stays a string until the very end.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from dlbench.report import format as f
from dlbench.results import batch_label, case_id


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    numeric: set[int] = field(default_factory=set)  # right-aligned columns
    muted: set[int] = field(default_factory=set)  # columns shown small and grey (CIs)
    row_classes: list[str] = field(default_factory=list)
    groups: list[tuple[str, int]] = field(default_factory=list)  # an optional header row above: (label, span)
    wrap: bool = False  # long prose cells (fairness descriptions) wrap instead of scrolling


def _ci(row: dict[str, Any], metric: str, fmt=f.rate) -> str:
    return f.interval(row.get(f"{metric}_ci_lo"), row.get(f"{metric}_ci_hi"), fmt)


def task_table(rows: Sequence[dict[str, Any]], label_of: dict[tuple[str, str], str], many_devices: bool,
               many_batches: bool) -> Table:
    """The per-task summary: every case with medians, CIs, latency, compile time, time-to-accuracy, flags."""
    headers = ["model", "framework"] + (["device"] if many_devices else []) + (["batch"] if many_batches else [])
    first_numeric = len(headers)
    headers += ["n", "accuracy", "train samples/s", "95% CI", "infer samples/s", "95% CI", "p50 ms", "p99 ms",
                "compile s", "time-to-acc s", "flags"]
    table = Table(headers, [], numeric=set(range(first_numeric, len(headers) - 1)),
                  muted={i for i, header in enumerate(headers) if header == "95% CI"})
    for row in rows:
        label = label_of[(str(row["framework"]), str(row["variant"]))]
        line = [str(row["model"]), label] + ([str(row["device"])] if many_devices else [])
        line += [batch_label(row["batch_size"], bool(row.get("batch_auto")))] if many_batches else []
        n = f"{row['n_ok']}/{row['n_repeats']}" if row["n_ok"] != row["n_repeats"] else str(row["n_repeats"])
        flags = []
        if not row["n_ok"]:
            table.rows.append(line + [n] + [f.DASH] * 9 + [str(row["status"])])
            table.row_classes.append("bad")
            continue
        mark = "~" if row["noisy"] or row.get("disturbed") else ""
        if row["noisy"]:
            flags.append("noisy")
        if row.get("disturbed"):
            flags.append(f"disturbed: {row['disturbed']}")
        if row.get("ci_unreached"):
            flags.append("CI target missed")
        if row["error"]:
            flags.append("some repeats failed")
        tta = f.seconds(row["time_to_accuracy_s"])
        if row["tta_reached"] < row["n_ok"] and f.number(row.get("target_accuracy")) is not None:
            tta = f"{tta} ({row['tta_reached']}/{row['n_ok']} reached)" if row["tta_reached"] else "not reached"
        line += [n, f.percent(row["accuracy"]),
                 mark + f.rate(row["train_samples_per_s"]), _ci(row, "train_samples_per_s"),
                 mark + f.rate(row["infer_samples_per_s"]), _ci(row, "infer_samples_per_s"),
                 f.ms(row["latency_p50_ms"]), f.ms(row["latency_p99_ms"]), f.seconds(row["compile_s"]), tta,
                 ", ".join(flags)]
        table.rows.append(line)
        table.row_classes.append("noisy" if row["noisy"] else "")
    return table


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and not value:
        return "none"
    return json.dumps(value, sort_keys=True, default=str)


def environment_table(records: Sequence[dict[str, Any]]) -> Table:
    """Each ``env`` field with its value, or every distinct value with how many records had it."""
    values: dict[str, Counter] = {}
    for record in records:
        env = record.get("env")
        if isinstance(env, dict):
            for key, value in env.items():
                values.setdefault(str(key), Counter())[_show(value)] += 1
    for key in ("profile", "threads"):
        for record in records:
            if key in record:
                values.setdefault(key, Counter())[_show(record[key])] += 1
    table = Table(["field", "value"], [], wrap=True)
    for key, counter in values.items():
        if len(counter) == 1:
            table.rows.append([key, next(iter(counter))])
            table.row_classes.append("")
        else:
            table.rows.append([key, "; ".join(f"{v} ({n} records)" for v, n in counter.most_common())])
            table.row_classes.append("differs")
    return table


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict) and value:
        out: dict[str, str] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: _show(value)}


def fairness_table(records: Sequence[dict[str, Any]], label_of: dict[tuple[str, str], str]) -> Table:
    """How each framework/variant was measured, side by side: rows that differ are highlighted."""
    by_label: dict[str, dict[str, list[str]]] = {}
    for record in records:
        if record["status"] != "ok":
            continue
        label = label_of.get((str(record["framework"]), str(record["variant"])), str(record["framework"]))
        plugin = record.get("plugin") if isinstance(record.get("plugin"), dict) else {}
        facts = {"framework_version": _show(record.get("framework_version", "")),
                 "plugin": " ".join(str(plugin.get(k, "")) for k in ("name", "dist", "dist_version")).strip(),
                 "threads (harness)": _show(record.get("threads")), "device": _show(record.get("device")),
                 "batch_size": _show(record.get("batch_size"))}
        facts.update(_flatten(record.get("fairness") or {}))
        cells = by_label.setdefault(label, {})
        for key, value in facts.items():
            if value not in cells.setdefault(key, []):
                cells[key].append(value)
    labels = list(by_label)
    keys = list(dict.fromkeys(k for cells in by_label.values() for k in cells))
    table = Table(["setting", *labels], [], wrap=True)
    for key in keys:
        cells = [" | ".join(by_label[label].get(key, [])) for label in labels]
        table.rows.append([key, *cells])
        present = [c for c in cells if c]
        table.row_classes.append("differs" if len(set(present)) > 1 and len(present) == len(cells) else "")
    return table


def failures_table(records: Iterable[dict[str, Any]]) -> tuple[Table, list[str]]:
    """Every case that did not finish ok (repeats merged), with its reason; and the stderr tails."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for record in records:
        if record["status"] != "ok":
            key = (case_id(record), record["status"], str(record.get("error") or "no reason recorded"))
            groups.setdefault(key, []).append(record)
    table = Table(["case", "status", "repeats", "reason"], [])
    tails = []
    for (cid, status, error), group in groups.items():
        repeats = ", ".join(str(r.get("repeat", "?")) for r in group)
        table.rows.append([cid, status, repeats, error])
        table.row_classes.append(status)
        tails.append(next((str(r["stderr_tail"]) for r in group if r.get("stderr_tail")), ""))
    return table, tails


def overview_facts(records: Sequence[dict[str, Any]], sources: Sequence[str]) -> list[tuple[str, str]]:
    """The header lines: where the numbers come from and how many cases ran."""
    statuses = Counter(r["status"] for r in records)
    cases = {case_id(r) for r in records}
    runs = list(dict.fromkeys(str(r.get("run_id", "")) for r in records))
    started = sorted(str(r.get("started_at")) for r in records if r.get("started_at"))
    facts = [("results", ", ".join(sources) if sources else f"{len(records)} records"),
             ("runs", ", ".join(runs[:6]) + (f" and {len(runs) - 6} more" if len(runs) > 6 else "")),
             ("cases", f"{len(cases)} cases, {len(records)} records: "
                       + ", ".join(f"{n} {s}" for s, n in statuses.most_common()))]
    if started:
        facts.append(("measured", started[0] if started[0] == started[-1] else f"{started[0]} to {started[-1]}"))
    return facts


TIME_NOTES = ["Summed over the cases of the runs shown; with cases side by side (Ray) they add up to more than the "
              "wall time. Timed blocks: the training, top-up, Offline, SingleStream and LoadGen phases, whose clock "
              "makes the numbers; everything else is overhead: each case's load, prepare (imports, model build), "
              "parity and test evaluation, and the harness around it (docs/launch.md)."]


def time_table(records: Sequence[dict[str, Any]]) -> "Table | None":
    """Where the runs' time went (running.accounting); None for records from before it was measured."""
    from dlbench.running.accounting import account, time_rows

    if not any(r.get("harness_s") for r in records):
        return None
    return Table(["part", "seconds", "share"], time_rows(account(records)), numeric={1, 2})

