"""How much of a timed step is dlbench's own overhead?

Runs, side by side in one invocation, the fake framework's `noop` variant (a step that does nothing, so
the measured step time is the harness's loop, hook, sync and clock) and the fastest real zoo model
(softmax) in each installed framework, and prints the overhead per step and as a fraction of the real
step. Goal: under 1%.

    python benchmarks/harness_overhead.py [--pairs 4] [--threads 2]
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

HERE = Path(__file__).resolve().parent
TEST_PLUGINS = HERE.parent / "tests" / "plugins"


def run_case(framework: str, variant: str, steps: int, threads: int) -> float:
    """Seconds per training step (median over blocks) of one `dlbench run` case."""
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "PYTHONPATH": f"{TEST_PLUGINS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               "DLBENCH_PLUGINS": "fake_plugins"}
        command = [sys.executable, "-m", "dlbench.cli", "run", "-f", framework, "--variant", variant,
                   "-m", "softmax", "-t", "synthetic_images", "--steps", str(steps), "--threads", str(threads),
                   "--profile", "quick", "--out", out]
        subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        record = json.loads((Path(out) / "results.jsonl").read_text().splitlines()[0])
        if record["status"] != "ok":
            raise SystemExit(f"{framework}/{variant}: {record['error']}")
        return record["batch_size"] / record["metrics"]["train_samples_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frameworks", nargs="*", default=["pytorch", "keras"])
    args = parser.parse_args()
    arms = [("fake", "noop", 200_000)] + [(name, "", 2000) for name in args.frameworks]
    times: dict[str, list[float]] = {name: [] for name, _, _ in arms}
    for pair in range(args.pairs):
        order = arms if pair % 2 == 0 else list(reversed(arms))  # A B C, C B A, ...
        for name, variant, steps in order:
            variant = variant or {"pytorch": "eager", "keras": "fit"}.get(name, "")
            times[name].append(run_case(name, variant, steps, args.threads))
    overhead = statistics.median(times["fake"])
    print(f"harness overhead per step (noop framework): {overhead * 1e6:.2f} us "
          f"(median of {args.pairs} runs)")
    print("| framework | softmax step (us) | overhead / step |")
    print("|---|---|---|")
    for name in args.frameworks:
        step = statistics.median(times[name])
        print(f"| {name} | {step * 1e6:.1f} | {overhead / step:.3%} |")


if __name__ == "__main__":
    main()
