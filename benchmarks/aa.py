"""A/A benchmark: the same selection run twice on an unchanged checkout, then `dlbench compare` between them.

    python benchmarks/aa.py [--frameworks pytorch,keras] [--models mlp,cnn] [--task fashion_mnist]
                            [--repeat 3] [--profile quick] [--threshold 5%] [--env OMP_WAIT_POLICY=passive]
                            [--max-timing S] [--launch-ab]
                            [--out DIR] [--json aa-history.jsonl]

Nothing changed between the two runs, so every "faster"/"slower" verdict of `compare` is a false alarm:
the count must be 0. It also prints what decides how far dlbench can be trusted on this machine:

- the per-metric spread between the two runs (|B/A - 1| of each case's median over repeats);
- the noisy share (training IQR/median above 5% and above 10%), the disturbed share (steal/load flags)
  and how often adaptive sampling reached its CI target;
- for every estimator of the timed blocks (median, minimum block time, low quantile, trimmed mean),
  recomputed from the raw blocks of every record, how well it agrees with itself across the processes:
  the median over cases of the SD of log values over all 2 x repeat processes, and of |B/A - 1|. The
  estimator with the smallest spread is the one the numbers support (docs/noise.md).

``--launch-ab`` makes it an A/B of the launch with nothing else changed: A spawns every worker (``--launch
spawn``), B forks them from fork servers (``--launch fork``), run A B B A; the count of verdicts must be 0
all the same (docs/launch.md).

``--env`` passes settings to both runs' workers (they inherit the environment): compare spreads with and
without OMP_PROC_BIND=close, OMP_WAIT_POLICY=passive, KMP_BLOCKTIME=0, ... on a quiet machine.
Run it several times and keep ``--json``'s lines: the distribution is the yardstick for every change.
On a machine shared with other work the figures measure that work too; say so next to them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
METRICS = ("train_samples_per_s", "infer_samples_per_s", "latency_p50_ms")


def run(out: Path, args: argparse.Namespace, env: dict[str, str], launch: str = "") -> float:
    command = [sys.executable, "-m", "dlbench.cli", "run", "-t", args.task, "--repeat", str(args.repeat),
               "--profile", args.profile, "--out", str(out)] + (["--launch", launch] if launch else [])
    for name in args.frameworks.split(","):
        command += ["-f", name.strip()]
    for name in args.models.split(","):
        command += ["-m", name.strip()]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if args.max_timing:
        command += ["--max-timing", str(args.max_timing)]
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if not (out / "results.jsonl").exists():
        raise SystemExit(f"dlbench run failed ({done.returncode}): {done.stderr[-2000:]}")
    return time.monotonic() - started


def records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]


def run_sides(out: Path, args: argparse.Namespace, env: dict[str, str]) -> tuple[Path, Path, list[float]]:
    """Run side A and side B; with --launch-ab, spawn (A) against fork (B) in the order A B B A, each side's two
    runs merged into one results file (the second run's repeats numbered after the first's)."""
    if not args.launch_ab:
        wall = [run(out / "A", args, env), run(out / "B", args, env)]
        return out / "A" / "results.jsonl", out / "B" / "results.jsonl", wall
    order = [("A1", "spawn"), ("B1", "fork"), ("B2", "fork"), ("A2", "spawn")]
    wall = [run(out / name, args, env, launch) for name, launch in order]
    merged = []
    for side in ("A", "B"):
        first, second = records(out / f"{side}1"), records(out / f"{side}2")
        for record in second:
            record["repeat"] += args.repeat
        path = out / f"{side}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in first + second))
        merged.append(path)
    return merged[0], merged[1], wall


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def value(record: dict[str, Any], metric: str) -> float | None:
    metrics = record.get("metrics") or {}
    if metric.startswith("latency_"):
        return (metrics.get("latency_ms") or {}).get(metric[len("latency_"):-len("_ms")])
    return metrics.get(metric)


def by_case(recs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    cases: dict[str, list[dict[str, Any]]] = {}
    for record in recs:
        if record["status"] == "ok":
            cases.setdefault(record["case_id"], []).append(record)
    return cases


def spread_between_runs(a: dict[str, list], b: dict[str, list]) -> dict[str, dict[str, float]]:
    """metric -> case -> |B/A - 1| of the medians over repeats."""
    found: dict[str, dict[str, float]] = {m: {} for m in METRICS}
    for case in a.keys() & b.keys():
        for metric in METRICS:
            va = [v for v in (value(r, metric) for r in a[case]) if v]
            vb = [v for v in (value(r, metric) for r in b[case]) if v]
            if va and vb:
                found[metric][case] = abs(statistics.median(vb) / statistics.median(va) - 1)
    return found


def estimator_agreement(a: dict[str, list], b: dict[str, list]) -> dict[str, dict[str, float]]:
    """estimator -> {"process_sd": median over cases of the SD of log values over all processes,
    "between_runs": median over cases of |B/A - 1|}, training throughput recomputed from raw blocks."""
    from dlbench.stats.estimators import ESTIMATORS, estimate

    table: dict[str, dict[str, float]] = {}
    for name in ESTIMATORS:
        sds, gaps = [], []
        for case in a.keys() & b.keys():
            va = [estimate(r["metrics"]["train_blocks"], name) for r in a[case] if r["metrics"].get("train_blocks")]
            vb = [estimate(r["metrics"]["train_blocks"], name) for r in b[case] if r["metrics"].get("train_blocks")]
            if len(va) + len(vb) >= 3 and va and vb:
                sds.append(statistics.stdev(math.log(v) for v in va + vb))
                gaps.append(abs(statistics.median(vb) / statistics.median(va) - 1))
        if sds:
            table[name] = {"process_sd": statistics.median(sds), "between_runs": statistics.median(gaps)}
    return table


def shares(recs: list[dict[str, Any]]) -> dict[str, float]:
    ok = [r for r in recs if r["status"] == "ok"]
    if not ok:
        return {}
    iqr = [r["metrics"].get("train_iqr_rel") or 0 for r in ok]
    reached = [r["metrics"].get("train_ci_reached") for r in ok if "train_ci_reached" in r["metrics"]]
    return {"records": len(ok), "train_iqr_above_5pct": sum(v > 0.05 for v in iqr) / len(ok),
            "noisy_above_10pct": sum(bool(r["metrics"].get("noisy")) for r in ok) / len(ok),
            "disturbed": sum(bool(r["metrics"].get("disturbed")) for r in ok) / len(ok),
            "ci_reached": sum(bool(v) for v in reached) / len(reached) if reached else float("nan"),
            "median_wall_s": statistics.median(r.get("wall_s") or 0 for r in ok)}


def wall_lines(args: argparse.Namespace, wall: list[float], ra: list[dict[str, Any]],
               rb: list[dict[str, Any]]) -> list[str]:
    """The runs' wall times; with --launch-ab also what the launch should change (prepare, wall) and what it
    must not (peak memory), spawned against forked."""
    names = ("A1", "B1", "B2", "A2") if args.launch_ab else ("A", "B")
    lines = ["wall time: " + ", ".join(f"run {name} {seconds:.0f} s" for name, seconds in zip(names, wall))]
    if not args.launch_ab:
        return lines

    def median(recs: list[dict[str, Any]], value: Any) -> float:
        values = [v for v in (value(r["metrics"]) for r in recs if r["status"] == "ok") if v is not None]
        return statistics.median(values) if values else float("nan")

    for name, recs in (("spawn", ra), ("fork", rb)):
        lines.append(f"{name}: median prepare {median(recs, lambda m: (m.get('phases_s') or {}).get('prepare')):.2f}"
                     f" s, median peak memory {median(recs, lambda m: m.get('peak_memory_mb')):.0f} MB")
    lines.append(f"fork/spawn wall time, A B B A: {(wall[1] + wall[2]) / (wall[0] + wall[3]):.3f}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", default="pytorch,keras")
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--task", default="fashion_mnist")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--threads", type=int, default=0, help="default: dlbench's (every core but one)")
    parser.add_argument("--max-timing", type=float, metavar="S",
                        help="dlbench's --max-timing for both runs; with a larger --repeat: more, shorter repeats")
    parser.add_argument("--threshold", default="5%")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="set in both runs' environment (repeatable), e.g. OMP_WAIT_POLICY=passive")
    parser.add_argument("--launch-ab", action="store_true",
                        help="A: --launch spawn, B: --launch fork, run A B B A: the fork server must change nothing")
    parser.add_argument("--out", type=Path, help="keep the two runs here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="append this A/A run's figures as one JSON line")
    args = parser.parse_args()

    env = dict(os.environ)
    for item in args.env:
        key, _, val = item.partition("=")
        env[key] = val
    with tempfile.TemporaryDirectory(prefix="dlbench-aa-") as tmp:
        out = args.out or Path(tmp)
        a_file, b_file, wall = run_sides(out, args, env)
        compare = subprocess.run([sys.executable, "-m", "dlbench.cli", "compare", str(a_file), str(b_file),
                                  "--threshold", args.threshold], env=env, capture_output=True, text=True)
        ra, rb = read_jsonl(a_file), read_jsonl(b_file)
    print(compare.stdout)
    rows = [line.split() for line in compare.stdout.splitlines()]
    verdicts = [row for row in rows if row and row[0].count("/") == 5]  # table rows start with a case id
    calls = [v for v in verdicts if "faster" in v or "slower" in v]
    a, b = by_case(ra), by_case(rb)
    spread = spread_between_runs(a, b)
    agreement = estimator_agreement(a, b)
    share = shares(ra + rb)
    print(f"A/A: {len(calls)} significant verdict(s) out of {len(verdicts)} comparisons "
          f"(every one is a false alarm; compare exited {compare.returncode})")
    print("spread between the two runs, |B/A - 1| of each case's median over repeats:")
    for metric, cases in spread.items():
        if cases:
            values = sorted(cases.values())
            print(f"  {metric:22s} median {100 * statistics.median(values):5.1f}%   max {100 * values[-1]:5.1f}%")
    print("estimators of training throughput, recomputed from the raw blocks (smaller = agrees with itself better):")
    for name, figures in sorted(agreement.items(), key=lambda item: item[1]["process_sd"]):
        print(f"  {name:13s} SD across processes {100 * figures['process_sd']:5.1f}%   "
              f"|B/A - 1| {100 * figures['between_runs']:5.1f}%")
    if share:
        print(f"records {share['records']}: training IQR/median > 5% in {100 * share['train_iqr_above_5pct']:.0f}%, "
              f"noisy (> 10%) {100 * share['noisy_above_10pct']:.0f}%, disturbed (steal/load) "
              f"{100 * share['disturbed']:.0f}%, CI target reached {100 * share['ci_reached']:.0f}%; "
              f"median case wall {share['median_wall_s']:.1f} s")
    print("\n".join(wall_lines(args, wall, ra, rb)))
    if args.json:
        line = {"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "selection": vars(args) | {"out": str(args.out),
                "json": str(args.json)}, "false_verdicts": len(calls), "comparisons": len(verdicts),
                "spread": {m: statistics.median(c.values()) for m, c in spread.items() if c},
                "estimators": agreement, "shares": share, "wall_s": wall}
        with open(args.json, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, default=str) + "\n")
    return 1 if calls else 0


if __name__ == "__main__":
    sys.exit(main())
