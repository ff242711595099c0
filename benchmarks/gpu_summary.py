"""The tables ``benchmarks/gpu_check.sh`` ends with, from the records alone (nothing is measured here).

    python benchmarks/gpu_summary.py [--doctor DOCTOR.json] RESULTS.jsonl [RESULTS.jsonl ...]

- the device's own ceilings (``dlbench doctor --json``), per library and precision;
- per case: the batch it ran (the knee of ``--batch-size auto``, marked), train and infer samples/s, % of the
  ceiling of its precision, training FLOPs per byte, the regime, and its fixed cost;
- the batch curves: training samples/s at each batch of every ``--batch-size auto`` sweep, the knee, and
  how much faster the knee trains than batch 128;
- per-case fixed cost (process start and imports, data, prepare: framework import, CUDA/XLA start-up, the
  model and its data on the device; the first step's compilation; the batch sweep) against the measured work;
- memory, energy and host/event agreement (dlbench.report.device), and each reduced-precision variant's
  accuracy against its float32 twin.

A value a case did not measure reads a dash or "not measured", never 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any, Optional

# reduced-precision variant -> its float32 twin of the same framework
TWINS = {("pytorch", "amp-bf16"): "eager", ("jax", "bf16"): "jit", ("keras", "mixed-bf16"): "fit"}
ACCURACY_POINTS = 1.0  # the bound: bf16 within 1 point of float32 after the budget
MEASURED_PHASES = ("train", "test_eval", "extra_timing", "offline", "latency", "loadgen")


def _table(rows: list[list[Any]], headers: list[str]) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers, tablefmt="github", disable_numparse=True)


def _num(value: Any, fmt: str = ",.0f") -> str:
    return format(value, fmt) if isinstance(value, (int, float)) and value == value else "—"


def ceilings_table(doctor: dict[str, Any]) -> str:
    """The GPU's ceilings as ``dlbench doctor`` measured them, or why there are none."""
    peaks = doctor.get("gpu_peak") or {}
    if not peaks:
        return f"GPU ceilings: {doctor.get('gpu_peak_reason') or 'not measured'}"
    rows = [[library, facts.get("error", "")] + ["—"] * 4 if "error" in facts else
            [facts.get("library", library), facts.get("device_name", ""), _num(facts.get("float32_gflops")),
             _num(facts.get("tf32_gflops")), _num(facts.get("bfloat16_gflops")), _num(facts.get("copy_gbs"))]
            for library, facts in peaks.items()]
    return _table(rows, ["library", "GPU", "float32 GFLOP/s (TF32 off)", "TF32 GFLOP/s", "bfloat16 GFLOP/s",
                         "copy GB/s"])


def fixed_cost(record: dict[str, Any]) -> dict[str, Optional[float]]:
    """Where a case's wall time went outside its measured work: start-up, data, prepare, compile, sweep."""
    metrics = record.get("metrics") or {}
    phases = metrics.get("phases_s") or {}
    measured = sum(v for k, v in phases.items() if k in MEASURED_PHASES and isinstance(v, (int, float)))
    wall = record.get("wall_s")
    return {"wall": wall, "startup": phases.get("startup"), "load": phases.get("load"),
            "prepare": phases.get("prepare"), "compile": metrics.get("compile_s"),
            "sweep": (metrics.get("batch_sweep") or {}).get("seconds"),
            "fixed": wall - measured if isinstance(wall, (int, float)) else None, "measured": measured}


def case_rows(records: list[dict[str, Any]]) -> list[list[str]]:
    from dlbench.report.trust import peak_pct, roofline_position

    rows = []
    for record in sorted((r for r in records if r.get("status") == "ok"), key=_order):
        metrics, position = record["metrics"], roofline_position(record)
        auto = " (auto)" if record.get("batch_size_requested") == "auto" else ""
        peak = peak_pct(record)
        rows.append([f"{record['framework']}/{record['variant']}", record["model"], record["device"],
                     f"{record['batch_size']}{auto}", _num(metrics.get("train_samples_per_s")),
                     _num(metrics.get("infer_samples_per_s")), _num(peak, ".2f") + ("%" if peak is not None else ""),
                     _num(metrics.get("train_flops_per_byte"), ".3g"), position.regime if position else "—",
                     _num(metrics.get("compile_s"), ".1f"), _num(fixed_cost(record)["fixed"], ".1f"),
                     _num(record.get("wall_s"), ".1f")])
    return rows


CASE_HEADERS = ["framework/variant", "model", "device", "batch", "train/s", "infer/s", "% peak", "FLOP/B", "regime",
                "compile s", "fixed s", "wall s"]


def _order(record: dict[str, Any]) -> tuple:
    return (record["task"], record["model"], record["framework"], record["variant"],
            record.get("batch_size_requested") == "auto", record["batch_size"])


def curve_rows(records: list[dict[str, Any]]) -> list[list[str]]:
    """One row per ``--batch-size auto`` case: the curve, the knee, and the knee's speed-up over its start."""
    rows = []
    for record in sorted((r for r in records if r.get("status") == "ok"), key=_order):
        sweep = (record.get("metrics") or {}).get("batch_sweep")
        if not isinstance(sweep, dict) or not sweep.get("curve"):
            continue
        curve = {int(p["batch_size"]): float(p["train_samples_per_s"]) for p in sweep["curve"]}
        start, knee = sweep["start"], sweep["knee"]
        rows.append([f"{record['framework']}/{record['variant']}", record["model"], record["device"],
                     " → ".join(f"{b}: {r:,.0f}" for b, r in sorted(curve.items())), str(knee),
                     f"{curve[knee] / curve[start]:.1f}x" if start in curve and knee in curve else "—",
                     str(sweep.get("stopped", ""))])
    return rows


def fixed_cost_rows(records: list[dict[str, Any]]) -> list[list[str]]:
    """Medians per framework/variant of what a case costs before and around its measured work."""
    groups: dict[str, list[dict[str, Optional[float]]]] = {}
    for record in records:
        if record.get("status") == "ok":
            groups.setdefault(f"{record['framework']}/{record['variant']}", []).append(fixed_cost(record))
    rows = []
    for label, costs in sorted(groups.items()):
        def median(key: str) -> str:
            values = [c[key] for c in costs if isinstance(c[key], (int, float))]
            return _num(statistics.median(values), ".1f") if values else "—"

        rows.append([label, str(len(costs)), median("startup"), median("load"), median("prepare"), median("compile"),
                     median("fixed"), median("measured"), median("wall")])
    return rows


def precision_rows(records: list[dict]) -> list[list[str]]:
    ok = {(r["framework"], r["variant"], r["model"], r["task"], r["device"], r.get("batch_size_requested") == "auto"):
          r for r in records if r.get("status") == "ok"}
    rows = []
    for (framework, variant, model, task, device, auto), record in sorted(ok.items()):
        twin_variant = TWINS.get((framework, variant))
        twin = ok.get((framework, twin_variant, model, task, device, auto)) if twin_variant else None
        if twin is None:
            continue
        low, full = record["metrics"].get("accuracy"), twin["metrics"].get("accuracy")
        if low is None or full is None:
            continue
        delta = round(100.0 * (low - full), 1) + 0.0  # to a tenth of a point, as reported; + 0.0: no -0.0
        rows.append([f"{framework}/{model}/{task}/{device}" + (" (auto)" if auto else ""),
                     f"{twin_variant} {100 * full:.1f}%", f"{variant} {100 * low:.1f}%", f"{delta:+.1f}",
                     "ok" if abs(delta) <= ACCURACY_POINTS else f"beyond {ACCURACY_POINTS:g} point"])
    return rows


def sections(records: list[dict[str, Any]], doctor: Optional[dict[str, Any]]) -> list[str]:
    from dlbench.report.device import device_text

    parts = []
    if doctor is not None:
        parts += ["### The device's own ceilings (dlbench doctor)", ceilings_table(doctor)]
    parts += ["### Cases (% peak against the ceiling of the case's precision; regime from the roofline)",
              _table(case_rows(records), CASE_HEADERS)]
    curves = curve_rows(records)
    if curves:
        parts += ["### Throughput against batch size (--batch-size auto)",
                  _table(curves, ["framework/variant", "model", "device", "batch: train samples/s", "knee",
                                  "knee / start", "stopped"])]
    parts += ["### Fixed cost per case (medians, seconds)",
              _table(fixed_cost_rows(records), ["framework/variant", "cases", "startup", "data", "prepare",
                                                "first-step compile", "fixed (wall - measured)", "measured",
                                                "wall"]),
              "startup: process start and dlbench's imports; prepare: the framework's import, CUDA/XLA start-up, "
              "the model and the data on the device; fixed: the case's wall time outside its measured phases "
              "(training budget, test evaluation, extra timing, Offline, SingleStream), the batch sweep included"]
    device = device_text(records, always=True)
    if device:
        parts.append(device)
    rows = precision_rows(records)
    if rows:
        parts += ["### Reduced precision against float32 (test accuracy after the same budget)",
                  _table(rows, ["case", "float32", "reduced", "points", f"within {ACCURACY_POINTS:g}"])]
    failed = [r for r in records if r.get("status") != "ok"]
    if failed:
        parts.append("Not measured:\n" + "\n".join(f"  - {r['case_id']}: {r['status']} — {r.get('error')}"
                                                   for r in failed))
    return parts


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--doctor", type=Path, help="dlbench doctor --json output (the GPU ceilings)")
    args = parser.parse_args(argv)
    records = [json.loads(line) for path in args.results if path.exists()
               for line in path.read_text().splitlines() if line.strip()]
    doctor = None
    if args.doctor and args.doctor.exists():
        try:
            doctor = json.loads(args.doctor.read_text())
        except ValueError:
            doctor = {"gpu_peak_reason": f"{args.doctor} is not JSON (doctor failed?)"}
    if not records:
        print(f"no records in {', '.join(map(str, args.results))}")
        if doctor is not None:
            print(ceilings_table(doctor))
        return 1
    print("\n\n".join(sections(records, doctor)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
