"""The MLPerf scenario section of tables and reports: what LoadGen said about each case (``--inference loadgen``).

One row per case and scenario, medians over the case's ok repeats. A Server run LoadGen called INVALID
shows its verdict and no numbers; the reasons are listed under the table.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

from dlbench.report import format as f
from dlbench.report.sections import Table
from dlbench.report.summary import group_cases
from dlbench.stats.estimators import median

HEADERS = ["task", "model", "framework", "scenario", "serving", "result", "QPS", "p50 ms", "p90 ms", "p99 ms",
           "bound ms", "vs own", "predict vs own"]
RESULT = HEADERS.index("result")
ORDER = ("single-stream", "multi-stream", "server", "offline")


def _loadgen(record: dict[str, Any]) -> Optional[dict[str, Any]]:
    details = (record.get("metrics") or {}).get("loadgen")
    return details if isinstance(details, dict) and isinstance(details.get("scenarios"), dict) else None


def _mid(values: Iterable[Any]) -> Optional[float]:
    numbers = [v for v in map(f.number, values) if v is not None]
    return median(numbers) if numbers else None


def _verdict(results: Sequence[dict[str, Any]]) -> str:
    valid = sum(bool(r.get("valid")) for r in results)
    if valid == len(results):
        return "VALID"
    return "INVALID" if not valid else f"{valid}/{len(results)} VALID"


def _row(label: str, records: list[dict[str, Any]], scenario: str, notes: list[str]) -> Optional[list[str]]:
    details = [d for d in map(_loadgen, records) if d and scenario in d["scenarios"]]
    if not details:
        return None
    results = [d["scenarios"][scenario] for d in details]
    first = records[0]
    head = [str(first["task"]), str(first["model"]), label, scenario, _serving(results) if scenario == "server"
            else f.DASH, _verdict(results)]
    valid = [r for r in results if r.get("valid")]
    consistency = [d.get("consistency") or {} for d in details]
    if scenario == "server":
        bound = f.ms(_mid(r.get("latency_bound_ms") for r in results))
        if not valid:
            reasons = results[0].get("reasons") or ["no reason recorded"]
            notes.append(f"{label} {first['model']} on {first['task']}, server INVALID at every QPS tried: "
                         + "; ".join(map(str, reasons[:3])))
            return head + [f.DASH] * 4 + [bound, f.DASH, f.DASH]
        runs = [r.get("run", {}).get("latency_ms") or {} for r in valid]
        return head + [f.rate(_mid(r.get("target_qps") for r in valid))] + \
            [f.ms(_mid(run.get(p) for run in runs)) for p in ("p50", "p90", "p99")] + [bound, f.DASH, f.DASH]
    if not valid:
        reasons = results[0].get("reasons") or ["no reason recorded"]
        notes.append(f"{label} {first['model']} on {first['task']}, {scenario} INVALID: "
                     + "; ".join(map(str, reasons[:3])))
    shown = valid or results
    latencies = [r.get("latency_ms") or {} for r in shown]
    if scenario == "offline":
        checks = [c.get("offline") or {} for c in consistency]
        return head + [f.rate(_mid(r.get("qps") for r in shown))] + [f.DASH] * 4 + \
            [f.ratio(_mid(c.get("ratio") for c in checks)), _judged(checks, "predict_ratio_total")]
    qps = f.rate(_mid(r.get("qps") for r in shown)) if scenario == "single-stream" else f.DASH
    checks = [c.get("single_stream") or {} for c in consistency] if scenario == "single-stream" else []
    return head + [qps] + [f.ms(_mid(lat.get(p) for lat in latencies)) for p in ("p50", "p90", "p99")] + \
        [f.DASH, f.ratio(_mid(c.get("ratio_p50") for c in checks)), _judged(checks, "predict_ratio_p50")]


def _serving(results: Sequence[dict[str, Any]]) -> str:
    """How the Server was served: ``single``, or the chosen max batch and timeout of each repeat's grid search."""
    labels: list[str] = []
    for result in results:
        serve = result.get("serve") or {"mode": "single"}
        if serve.get("mode") != "batched":
            label = "single"
        elif result.get("valid"):
            label = f"batched <={serve.get('max_batch')}, {f.number(serve.get('batch_timeout_us')) or 0:g} µs"
        else:
            label = f"batched, {len(result.get('grid') or [])} tried"
        if label not in labels:
            labels.append(label)
    return "; ".join(labels)


def serve_mode(record: dict[str, Any]) -> str:
    """How a record's LoadGen Server was served: ``single`` (also when it has no Server result) or ``batched``."""
    details = _loadgen(record) or {}
    return str(((details.get("scenarios") or {}).get("server") or {}).get("serve", {}).get("mode", "single"))


def _judged(checks: list[dict[str, Any]], key: str) -> str:
    """The consistency ratio dlbench judges (the framework's own share), ``!`` where a repeat's check failed."""
    if not checks:
        return f.DASH
    shown = f.ratio(_mid(c.get(key) for c in checks))
    return shown + (" !" if any(c.get("agree") is False for c in checks) else "")


def scenario_table(records: Iterable[dict[str, Any]]) -> Optional[tuple[Table, list[str]]]:
    """The LoadGen scenario table and its notes; None when no record ran LoadGen."""
    from dlbench.report.summary import row_order

    records = [r for r in records if r.get("status") == "ok"]
    if not any(_loadgen(r) for r in records):
        return None
    groups = group_cases(records)
    keyed = sorted(groups.values(), key=lambda group: row_order({k: group[0].get(k) for k in
                                                                   ("task", "model", "framework", "variant",
                                                                    "device", "batch_size")}))
    variants: dict[str, set[str]] = {}
    for group in keyed:
        variants.setdefault(str(group[0]["framework"]), set()).add(str(group[0]["variant"]))
    table = Table(list(HEADERS), [], numeric=set(range(RESULT + 1, len(HEADERS))))
    notes: list[str] = []
    for group in keyed:
        fw = str(group[0]["framework"])
        label = fw if len(variants[fw]) == 1 else f"{fw}/{group[0]['variant']}"
        for scenario in ORDER:
            modes = sorted({serve_mode(r) for r in group}, reverse=True) if scenario == "server" else [None]
            for mode in modes:  # single and batched Servers of one case are different systems: one row each
                row = _row(label, [r for r in group if mode is None or serve_mode(r) == mode], scenario, notes)
                if row is not None:
                    table.rows.append(row)
                    table.row_classes.append("" if row[RESULT] == "VALID" else "bad")
    details = [d for d in map(_loadgen, records) if d]
    settings = details[0].get("settings") or {}
    versions = sorted({str(d.get("version")) for d in details})
    header = (f"MLPerf scenarios through LoadGen {', '.join(versions)}: {settings.get('note', '')}; "
              f"min duration {settings.get('min_duration_ms')} ms per test, MultiStream "
              f"{settings.get('multistream_samples_per_query', 8)} samples per query, Server p99 under the bound "
              f"(highest VALID target QPS of a bounded search; serving: single answers one query at a time, "
              f"batched gathers the waiting queries into one predict call of up to the max batch, waiting at most "
              f"the timeout after the first, and shows the best of its grid).")
    notes.insert(0, header)
    notes.insert(1, "QPS: SingleStream queries/s, Server target QPS, Offline samples/s; p50/p90/p99: latency per "
                    "query; vs own: LoadGen's number over dlbench's own timing of the same session (SingleStream "
                    "p50, Offline samples/s), which also pays for LoadGen's path (20-35 µs a query here), Offline's "
                    "staging and its bookkeeping; predict vs own: the same for the framework's predict alone, timed "
                    "inside the SUT, the consistency check (! where it differs beyond "
                    f"{_tolerance(details)}).")
    if any(settings.get("min_duration_ms") != (d.get("settings") or {}).get("min_duration_ms") for d in details):
        notes.append("the records were measured under different LoadGen settings (profiles); compare with care")
    return table, notes


def _tolerance(details: list[dict[str, Any]]) -> str:
    check = next((d.get("consistency") for d in details if d.get("consistency")), {}) or {}
    words = [f"{100 * check['tolerance']:g}%"] if check.get("tolerance") else []
    if check.get("latency_slack_ms"):
        words.append(f"{1000 * check['latency_slack_ms']:g} µs")
    return " or ".join(words) or "the recorded tolerance"


def scenario_section(records: Iterable[dict[str, Any]], fmt: str = "github") -> str:
    """The scenario table as text (any tabulate format) with its notes; "" when no record ran LoadGen."""
    from tabulate import tabulate

    built = scenario_table(records)
    if built is None:
        return ""
    table, notes = built
    rows, headers = table.rows, table.headers
    if fmt in ("github", "pipe"):
        rows = [[cell.replace("|", "\\|") for cell in row] for row in rows]
    align = ["right" if i in table.numeric else "left" for i in range(len(headers))]
    text = tabulate(rows, headers, tablefmt=fmt, colalign=align, disable_numparse=True)
    if fmt in ("html", "unsafehtml"):
        import html

        return text + "\n" + "\n".join(f"<p>{html.escape(line)}</p>" for line in notes)
    return "\n\n".join([text, "\n".join(notes)])
