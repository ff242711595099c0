"""How long does `dlbench publish` take for 500 runs of 64 cases (32,000 records), cold and incremental?

Generates the history (one run folder per run, a 15% slowdown planted in four cases at run 300 with a
new framework version), then times the real command in fresh processes, in A B B A order per round:
a cold build into a new folder (A), a publish again with nothing changed (B, twice), another cold
build (A); then a new run of 4 cases and a new run of all 64 cases into the built site. Prints the
medians, their ratio, how many pages each publish rendered, whether the step detector found exactly
the planted changes, and the peak memory. Goal: the cold build under 30 s on 2 cores.

    python benchmarks/publish_scale.py [--runs 500] [--cases 64] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dlbench.testing.history_samples import history_cases, make_run

SLOW_FROM = 300


def planted(index: int, case: dict) -> float:
    return 0.85 if index >= SLOW_FROM and case["framework"] == "pytorch" and case["model"] == "cnn" else 1.0


def version(index: int) -> str:
    return "2.1.0" if index >= SLOW_FROM else "2.0.0"


def write_run(root: Path, index: int, cases: list[dict]) -> Path:
    records = make_run(index, cases, seed=1, version=version, factor=planted)
    folder = root / records[0]["run_id"]
    folder.mkdir(parents=True)
    with open(folder / "results.jsonl", "w") as handle:
        handle.writelines(json.dumps(r, sort_keys=True) + "\n" for r in records)
    return folder


def publish(runs: list[Path], site: Path) -> tuple[float, str]:
    start = time.perf_counter()
    process = subprocess.run([sys.executable, "-m", "dlbench.cli", "publish", *map(str, runs), "-o", str(site)],
                             capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if process.returncode:
        raise SystemExit(process.stderr)
    return elapsed, process.stdout.splitlines()[0]


def pages_written(summary: str) -> str:
    match = re.search(r"(\d+) page\(s\) written, (\d+) unchanged", summary)
    return f"{match.group(1)} written / {match.group(2)} unchanged" if match else summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--cases", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="A B B A rounds (default 2)")
    args = parser.parse_args()
    cases = history_cases(args.cases)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        runs = [write_run(root / "runs", i, cases) for i in range(args.runs)]
        size = sum((r / "results.jsonl").stat().st_size for r in runs)
        print(f"generated {args.runs} runs x {args.cases} cases = {args.runs * args.cases:,} records "
              f"({size / 1e6:.0f} MB) in {time.perf_counter() - start:.1f} s")
        cold, again, summaries = [], [], {}
        for round_ in range(args.rounds):
            for arm in ("A", "B", "B", "A"):
                if arm == "A":
                    site = root / f"site-{round_}-{len(cold)}"
                    elapsed, summaries["cold"] = publish(runs, site)
                    cold.append(elapsed)
                else:
                    elapsed, summaries["again"] = publish(runs, site)
                    again.append(elapsed)
        extra_small = write_run(root / "runs", args.runs, cases[:4])
        small, summaries["+4 cases"] = publish(runs + [extra_small], site)
        extra_full = write_run(root / "runs", args.runs + 1, cases)
        full, summaries["+64 cases"] = publish(runs + [extra_small, extra_full], site)
        found = json.loads((site / "changes.json").read_text())
    expected = {c["framework"] + "/" + c["variant"] + "/" + c["model"] for c in cases
                if planted(SLOW_FROM, c) != 1.0}
    at_run = {c["run_id"] for c in found}
    exact = ({c["case"].rsplit("/", 3)[0] for c in found} == expected and len(found) == 3 * len(
        [c for c in cases if planted(SLOW_FROM, c) != 1.0]) and len(at_run) == 1)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"cold build:               median {statistics.median(cold):5.1f} s over {len(cold)} "
          f"({', '.join(f'{t:.1f}' for t in cold)}); {pages_written(summaries['cold'])}")
    print(f"again, nothing changed:   median {statistics.median(again):5.1f} s over {len(again)} "
          f"({', '.join(f'{t:.1f}' for t in again)}); {pages_written(summaries['again'])}")
    print(f"ratio again / cold:       {statistics.median(again) / statistics.median(cold):.2f}")
    print(f"after a new run, 4 cases:  {small:5.1f} s; {pages_written(summaries['+4 cases'])}")
    print(f"after a new run, 64 cases: {full:5.1f} s; {pages_written(summaries['+64 cases'])}")
    print(f"changes found: {len(found)} ({'exactly the planted ones, at run ' + next(iter(at_run)) if exact else 'NOT the planted ones: ' + repr(found[:3])})")
    print(f"peak memory of a publish process: {peak:.0f} MiB")
    print(f"goal: cold build under 30 s on 2 cores: {'met' if statistics.median(cold) < 30 else 'NOT met'}")


if __name__ == "__main__":
    main()
