"""The table ``benchmarks/gpu_check.sh`` ends with: per case throughput, latency, device memory, energy and
host/event agreement, then how far each reduced-precision variant's accuracy is from its float32 twin.

    python benchmarks/gpu_summary.py RUN_DIR/results.jsonl

Reads only the records (nothing is measured here); a value a case did not measure reads "not measured"
or a dash, never 0.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# reduced-precision variant -> its float32 twin of the same framework
TWINS = {("pytorch", "amp-bf16"): "eager", ("jax", "bf16"): "jit", ("keras", "mixed-bf16"): "fit"}
ACCURACY_POINTS = 1.0  # the bound: bf16 within 1 point of float32 after the quick budget


def precision_rows(records: list[dict]) -> list[list[str]]:
    ok = {(r["framework"], r["variant"], r["model"], r["task"], r["device"]): r for r in records
          if r.get("status") == "ok"}
    rows = []
    for (framework, variant, model, task, device), record in sorted(ok.items()):
        twin_variant = TWINS.get((framework, variant))
        twin = ok.get((framework, twin_variant, model, task, device)) if twin_variant else None
        if twin is None:
            continue
        low, full = record["metrics"].get("accuracy"), twin["metrics"].get("accuracy")
        if low is None or full is None:
            continue
        delta = round(100.0 * (low - full), 1) + 0.0  # to a tenth of a point, as reported; + 0.0: no -0.0
        rows.append([f"{framework}/{model}/{task}/{device}", f"{twin_variant} {100 * full:.1f}%",
                     f"{variant} {100 * low:.1f}%", f"{delta:+.1f}",
                     "ok" if abs(delta) <= ACCURACY_POINTS else f"beyond {ACCURACY_POINTS:g} point"])
    return rows


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    from tabulate import tabulate

    from dlbench.report.device import device_text

    path = Path(argv[0])
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    if not records:
        print(f"no records in {path}")
        return 1
    print(device_text(records, always=True))
    rows = precision_rows(records)
    if rows:
        print("\nReduced precision against float32 (test accuracy after the same budget)\n")
        print(tabulate(rows, ["case", "float32", "reduced", "points", f"within {ACCURACY_POINTS:g}"],
                       tablefmt="github", disable_numparse=True))
    failed = [r for r in records if r.get("status") != "ok"]
    if failed:
        print("\nNot measured:")
        for record in failed:
            print(f"  - {record['case_id']}: {record['status']} — {record.get('error')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
