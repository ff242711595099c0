"""Does batching the queued queries pay? LoadGen Server QPS, one at a time against batched, per framework and model.

    python benchmarks/loadgen_serving.py [--pairs 4] [--frameworks pytorch,keras,jax] [--models mlp,cnn]
        [--task fashion_mnist] [--profile quick] [--bound-ms 10] [--device cpu] [--out DIR]

Each arm is one ``dlbench run --inference loadgen --scenario server --threads 1`` over every framework and
model, with ``--serve single`` (A) or ``--serve batched`` (B, its default grid), in the order A B B A ... so
that a drift in the machine's load falls on both. Per case it prints the median VALID QPS of each arm, the
median of the per-pair ratios batched / single, the policy the batched searches chose, and how many runs
were VALID; the machine's load average before and after. The run folders stay in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional


def run_arm(serve: str, args: argparse.Namespace, out: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """One dlbench run of every case with ``--serve serve``; the Server result of each case."""
    command = [sys.executable, "-m", "dlbench.cli", "run", "--inference", "loadgen", "--scenario", "server",
               "--threads", "1", "--profile", args.profile, "--latency-bound-ms", str(args.bound_ms), "-t", args.task,
               "--device", args.device, "--serve", serve, "--out", str(out)]
    for framework in args.frameworks.split(","):
        command += ["-f", framework]
    for model in args.models.split(","):
        command += ["-m", model]
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    results = out / "results.jsonl"
    for line in results.read_text().splitlines() if results.exists() else []:
        record = json.loads(line)
        server = ((record.get("metrics") or {}).get("loadgen") or {}).get("scenarios", {}).get("server") or {}
        found[(record["framework"], record["model"])] = {"status": record["status"], "valid": server.get("valid"),
                                                         "qps": server.get("target_qps"), "serve": server.get("serve")}
    return found


def _median(values: list[Optional[float]]) -> Optional[float]:
    numbers = [v for v in values if v]
    return statistics.median(numbers) if numbers else None


def summarise(pairs: list[dict[str, dict]]) -> list[str]:
    """The Markdown table: medians of each arm and of the per-pair ratios."""
    lines = ["| framework | model | single QPS | batched QPS | batched / single (median of pairs) | chosen | VALID |",
             "|---|---|---:|---:|---:|---|---|"]
    cases = sorted({case for pair in pairs for arm in pair.values() for case in arm})
    for case in cases:
        arms = {name: [pair[name].get(case, {}) for pair in pairs] for name in ("single", "batched")}
        ratios = [b["qps"] / s["qps"] for s, b in zip(arms["single"], arms["batched"])
                  if s.get("qps") and b.get("qps")]
        chosen = sorted({f"<={b['serve']['max_batch']}, {b['serve']['batch_timeout_us']:g} µs" for b in arms["batched"]
                         if b.get("valid") and b.get("serve")})
        valid = "/".join(f"{sum(bool(r.get('valid')) for r in arms[n])}/{len(pairs)}" for n in ("single", "batched"))
        single, batched = (_median([r.get("qps") for r in arms[name]]) for name in ("single", "batched"))
        ratio = f"{statistics.median(ratios):.2f}x" if ratios else "—"
        lines.append(f"| {case[0]} | {case[1]} | {_qps(single)} | {_qps(batched)} | {ratio} | "
                     f"{'; '.join(chosen) or '—'} | {valid} |")
    return lines


def _qps(value: Optional[float]) -> str:
    return f"{value:,.0f}" if value else "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--frameworks", default="pytorch,keras,jax")
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--task", default="fashion_mnist")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--bound-ms", type=float, default=10.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="dlbench-serving-"))
    print(f"load before: {os.getloadavg()[0]:.2f} (1 min), runs in {out}", flush=True)
    pairs: list[dict[str, dict]] = []
    for index in range(args.pairs):
        order = ("single", "batched") if index % 2 == 0 else ("batched", "single")  # A B, then B A
        pair = {name: run_arm(name, args, out / f"pair{index}-{name}") for name in order}
        pairs.append(pair)
        print(f"pair {index + 1}/{args.pairs} done, load {os.getloadavg()[0]:.2f}", flush=True)
    print("\n".join(summarise(pairs)))
    print(f"load after: {os.getloadavg()[0]:.2f} (1 min); {args.pairs} pairs, {args.profile} profile, threads 1, "
          f"bound {args.bound_ms:g} ms, {args.device}")


if __name__ == "__main__":
    main()
