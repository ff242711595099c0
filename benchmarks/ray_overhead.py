"""What does running on Ray cost per case, and does it change the numbers?

Starts a real local Ray cluster (a head, plus ``--nodes - 1`` worker nodes, each its own process),
then runs the same smoke matrix with ``--executor local`` and ``--executor ray`` alternately (A B B A
...), and prints, side by side:

- wall seconds per case of each executor (the whole `dlbench run`, from start to table) and the
  difference, i.e. Ray's overhead per case (connecting, scheduling, the Ray worker, the results' trip
  back; with one node the cases run one at a time in both, so this is the honest like-for-like);
- the driver-side overhead each Ray record reports (round trip minus the worker's own wall time);
- A/A agreement: per case, median training and inference samples/s under Ray over those under the
  local executor; a median ratio within the run-to-run noise means the executor does not change
  what is measured.

    python benchmarks/ray_overhead.py [--pairs 2] [--nodes 1] [--threads 1] [-f pytorch] [-m softmax ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEST_PLUGINS = HERE.parent / "tests" / "plugins"
METRICS = ("train_samples_per_s", "infer_samples_per_s")


def run(executor: str, matrix: list[str], threads: int, env: dict[str, str], address: str) -> tuple[float, list]:
    """(wall seconds, final records) of one `dlbench run` of the matrix."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "dlbench.cli", "run", *matrix, "--profile", "smoke", "--threads",
                   str(threads), "--out", out, "--executor", executor]
        if executor == "ray":
            command += ["--ray-address", address]
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - started
        records = [json.loads(line) for line in (Path(out) / "results.jsonl").read_text().splitlines()]
    final = [r for r in records if not r.get("retried")]
    bad = [f"{r['case_id']}: {r['status']} {r.get('error')}" for r in final if r["status"] != "ok"]
    if bad:
        raise SystemExit(f"{executor}: " + "; ".join(bad))
    return wall, final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2, help="A B + B A pairs (each arm runs 2 x pairs / 2)")
    parser.add_argument("--nodes", type=int, default=1, help="nodes of the local cluster (1: the head only)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("-f", "--framework", action="append", default=None)
    parser.add_argument("-m", "--model", action="append", default=None)
    parser.add_argument("-t", "--task", action="append", default=None)
    args = parser.parse_args()
    from dlbench.testing.raycluster import LocalRayCluster

    matrix = []
    for flag, values, default in (("-f", args.framework, ["pytorch"]), ("-m", args.model, ["softmax", "mlp"]),
                                  ("-t", args.task, ["digits", "synthetic_images"])):
        for value in values or default:
            matrix += [flag, value]
    cpus = max(args.threads, 1)
    root = Path(f"/tmp/dlr-bench-{uuid.uuid4().hex[:8]}")  # short: Ray's socket paths must fit in 107 bytes
    node_env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(TEST_PLUGINS), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    with LocalRayCluster(root, head_cpus=cpus, env=node_env) as cluster:
        for _ in range(args.nodes - 1):
            cluster.add_node(num_cpus=cpus)
        print(f"local Ray cluster: {args.nodes} node(s) of {cpus} CPU(s), up in {time.perf_counter() - started:.1f} s")
        env = {**os.environ, **node_env, **cluster.client_env}
        walls: dict[str, list[float]] = {"local": [], "ray": []}
        values: dict[str, dict[tuple[str, str], list[float]]] = {"local": {}, "ray": {}}
        overheads: list[float] = []
        cases = 0
        for pair in range(args.pairs):
            for executor in (("local", "ray") if pair % 2 == 0 else ("ray", "local")):  # A B | B A
                wall, records = run(executor, matrix, args.threads, env, cluster.address)
                cases = len(records)
                walls[executor].append(wall / cases)
                for record in records:
                    for metric in METRICS:
                        values[executor].setdefault((record["case_id"], metric), []).append(
                            record["metrics"][metric])
                    if executor == "ray":
                        overheads.append(record["executor"]["overhead_s"])
    shutil.rmtree(root, ignore_errors=True)
    local, ray = statistics.median(walls["local"]), statistics.median(walls["ray"])
    print(f"matrix: {' '.join(matrix)}, profile smoke, {cases} cases, {args.pairs} A/B pairs, "
          f"{args.threads} thread(s)")
    print(f"wall per case: local {local:.2f} s, ray {ray:.2f} s -> Ray's overhead {ray - local:+.2f} s per case "
          f"({ray / local:.2f}x)")
    print(f"driver-side overhead per Ray task (round trip - worker wall): median {statistics.median(overheads):.3f} s, "
          f"max {max(overheads):.3f} s over {len(overheads)} tasks")
    print("| case | metric | local (median) | ray (median) | ray / local |")
    print("|---|---|---|---|---|")
    ratios: dict[str, list[float]] = {metric: [] for metric in METRICS}
    spreads: dict[str, list[float]] = {metric: [] for metric in METRICS}
    for (case, metric), here in sorted(values["local"].items()):
        there = values["ray"][(case, metric)]
        ratio = statistics.median(there) / statistics.median(here)
        ratios[metric].append(ratio)
        spreads[metric] += [max(v) / min(v) - 1 for v in (here, there) if len(v) > 1]
        print(f"| {case} | {metric} | {statistics.median(here):,.0f} | {statistics.median(there):,.0f} | "
              f"{ratio:.3f} |")
    for metric in METRICS:
        noise = statistics.median(spreads[metric]) if spreads[metric] else float("nan")
        print(f"A/A {metric}: median ray/local ratio {statistics.median(ratios[metric]):.3f} over "
              f"{len(ratios[metric])} cases; run-to-run spread within one executor (max/min - 1): "
              f"median {noise:.1%}")


if __name__ == "__main__":
    main()
