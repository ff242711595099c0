"""The device table: memory peaks per phase, energy per 1,000 samples, and host/device-timer agreement.

Shown by tables and reports when at least one case measured any of them (GPU cases, or CPU cases with
readable RAPL counters); a cell of a case that did not says so ("not measured"), never 0. Medians over
a case's ok repeats, like every other summary.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from dlbench.report import format as f
from dlbench.report.sections import Table
from dlbench.report.summary import group_cases
from dlbench.report.trust import peak_cell, trust_columns
from dlbench.stats.estimators import median

NOT_MEASURED = "not measured"
HEADERS = ["case", "train/s", "infer/s", "p50 ms", "p99 ms", "train peak MiB", "infer peak MiB", "J/1k train",
           "J/1k infer", "energy method", "host/event (train)", "% peak", "FLOP/B", "regime"]


def _values(records: list[dict[str, Any]], read: Any) -> Optional[float]:
    values = [v for v in (f.number(read(r.get("metrics") or {})) for r in records) if v is not None]
    return median(values) if values else None


def _measured(record: dict[str, Any]) -> bool:
    metrics = record.get("metrics") or {}
    energy = metrics.get("energy") or {}
    return (energy.get("method", NOT_MEASURED) != NOT_MEASURED or metrics.get("peak_device_memory_mb") is not None
            or metrics.get("device_timer") is not None)


def device_table(records: Iterable[dict[str, Any]], always: bool = False) -> Optional[Table]:
    """One row per case with an ok repeat; None when no case measured device memory, energy or events
    (unless ``always``)."""
    records = list(records)
    if not always and not any(_measured(r) for r in records if r.get("status") == "ok"):
        return None
    table = Table(list(HEADERS), [], numeric=set(range(1, 9)) | {10, 11, 12})
    for cid, group in group_cases(records).items():
        ok = [r for r in group if r.get("status") == "ok"]
        if not ok:
            continue
        energies = [(r.get("metrics") or {}).get("energy") or {} for r in ok]
        methods = sorted({str(e.get("method", NOT_MEASURED)) for e in energies})
        method = "/".join(methods) + (f" ({e_hz} Hz)" if (e_hz := energies[0].get("sample_hz")) else "")

        def joules(key: str) -> str:
            value = _values(ok, lambda m: m.get(key))
            return f.rate(value) if value is not None else NOT_MEASURED

        def memory(key: str) -> str:
            value = _values(ok, lambda m: m.get(key))
            return f"{value:,.1f}" if value is not None else f.DASH

        agreement = _values(ok, lambda m: m.get("train_event_agreement"))
        table.rows.append([
            cid, f.rate(_values(ok, lambda m: m.get("train_samples_per_s"))),
            f.rate(_values(ok, lambda m: m.get("infer_samples_per_s"))),
            f.ms(_values(ok, lambda m: (m.get("latency_ms") or {}).get("p50"))),
            f.ms(_values(ok, lambda m: (m.get("latency_ms") or {}).get("p99"))),
            memory("train_peak_device_memory_mb"), memory("infer_peak_device_memory_mb"),
            joules("train_j_per_1k_samples"), joules("infer_j_per_1k_samples"),
            method,
            f"{agreement:.4f}" if agreement is not None else f.DASH,
            *_roofline_cells(ok),
        ])
    return table


def _roofline_cells(ok: list[dict[str, Any]]) -> list[str]:
    trust = trust_columns(ok)
    intensity = f.number(trust["flops_per_byte"])
    return [peak_cell(trust["train_peak_pct"]), f"{intensity:.3g}" if intensity is not None else f.DASH,
            trust["regime"] or f.DASH]


NOTES = [
    "peak MiB: device memory at its peak in training (with its evaluations) and in inference, reset in between; "
    "— on the CPU (see peak RSS) or where the framework cannot reset its peak (JAX: inference not separable)",
    "J/1k: joules per 1,000 training samples / inferences: mean power over the timed blocks divided by the "
    "median throughput; GPU board energy from NVML, CPU package energy from RAPL",
    "host/event: host seconds / CUDA-event seconds per timed block (median); 1.0 means the host clock measured "
    "the device's work",
    "% peak: training GFLOP/s against the device's GEMM ceiling in the case's precision (a GPU's own, measured by "
    "the case's library); FLOP/B: training FLOPs per byte moved at the case's batch (zoo counts); regime: "
    "compute-, memory- or overhead-bound (under 10% of the roofline at that intensity)",
]


def not_measured_reasons(records: Iterable[dict[str, Any]]) -> list[str]:
    """Why energy was not measured, once per distinct reason, for the notes under the table."""
    reasons: dict[str, None] = {}
    for record in records:
        energy = (record.get("metrics") or {}).get("energy") or {}
        if record.get("status") == "ok" and energy.get("method", NOT_MEASURED) == NOT_MEASURED and energy.get("reason"):
            reasons[f"energy not measured: {energy['reason']}"] = None
    return list(reasons)


def device_text(records: Iterable[dict[str, Any]], fmt: str = "github", always: bool = False) -> str:
    """The device table as text (any tabulate format) with its notes; "" when nothing was measured."""
    from tabulate import tabulate

    records = list(records)
    table = device_table(records, always=always)
    if table is None or not table.rows:
        return ""
    align = ["right" if i in table.numeric else "left" for i in range(len(table.headers))]
    rows = [[cell.replace("|", "\\|") for cell in row] for row in table.rows] if fmt in ("github", "pipe") \
        else table.rows
    text = tabulate(rows, table.headers, tablefmt=fmt, colalign=align, disable_numparse=True)
    return "Device memory, energy and timing\n\n" + text + "\n\n" + "\n".join(NOTES + not_measured_reasons(records))
