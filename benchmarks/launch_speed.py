"""How much faster runs (or the test suite) are with fork servers: spawn (A) against fork (B), side by side.

    python benchmarks/launch_speed.py [--pairs 4] [--a-checkout DIR] [-- RUN ARGS...]
    python benchmarks/launch_speed.py --suite [--pairs 1] [--a-checkout DIR] [-- PYTEST ARGS...]

Runs A and B alternately, A B B A ..., ``--pairs`` times each, and prints for every run its wall time, the
share of it outside the timed blocks (overhead: 1 - the timed phases' sum / wall) and the median prepare
phase per framework; then the medians over pairs of B/A wall time and the speed-up. Default RUN ARGS are
``make run``'s (``--all --report``, JAX disabled as ``make run`` disables it), so the default is `make run`
before and after, minus the venv and data steps.

A: ``--launch spawn`` on this checkout, or with ``--a-checkout DIR`` this command run from another
checkout (say main before fork servers, which has no ``--launch``: nothing is passed); B: ``--launch fork``
on this checkout. ``--suite`` times ``python -m pytest -q`` instead (A with DLBENCH_LAUNCH=spawn, B with fork;
with ``--a-checkout``, A is that checkout's own suite). Run it on a quiet machine; say the load beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
MAKE_RUN = ["--all", "--report"]
TIMED = ("train", "extra_timing", "offline", "latency", "loadgen")


def checkout_env(checkout: Path, suite: bool) -> dict[str, str]:
    """The environment that runs ``checkout``'s harness and plugins (its tree first on the path); for a run,
    without JAX, as ``make run``."""
    paths = [checkout / "harness", checkout / "plugins" / "pytorch", checkout / "plugins" / "keras",
             checkout / "plugins" / "jax"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in paths)}
    env.pop("DLBENCH_LAUNCH", None)
    return env if suite else {**env, "DLBENCH_DISABLE_PLUGINS": "jax"}


def side(name: str, args: argparse.Namespace) -> tuple[Path, dict[str, str], list[str]]:
    """(where to run, environment, extra arguments) of side A or B."""
    if name == "A" and args.a_checkout:
        return args.a_checkout, checkout_env(args.a_checkout, args.suite), []
    launch = "spawn" if name == "A" else "fork"
    if args.suite:
        return ROOT, {**checkout_env(ROOT, True), "DLBENCH_LAUNCH": launch}, []
    return ROOT, checkout_env(ROOT, False), ["--launch", launch]


def one_run(name: str, args: argparse.Namespace, work: Path, index: int) -> dict[str, Any]:
    cwd, env, extra = side(name, args)
    out = work / f"{name}{index}"
    if args.suite:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args.rest]
    else:
        command = [sys.executable, "-m", "dlbench.cli", "run", *(args.rest or MAKE_RUN), "--out", str(out), *extra]
    load = os.getloadavg()[0]
    started = time.monotonic()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    result = {"side": name, "wall_s": wall, "rc": done.returncode, "load_1m": load}
    if not args.suite:
        result.update(run_figures(out, wall))
    print(f"{name}{index}: {wall:7.1f} s, exit {done.returncode}, load {load:.1f}"
          + (f", overhead {result['overhead']:.0%}, prepare median "
             + ", ".join(f"{fw} {s:.2f} s" for fw, s in result["prepare"].items()) if "overhead" in result else ""),
          flush=True)
    return result


def run_figures(out: Path, wall: float) -> dict[str, Any]:
    """The overhead share and the median prepare phase per framework, from a run folder's records."""
    path = out / "results.jsonl"
    if not path.exists():
        return {}
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    ok = [r for r in recs if r["status"] == "ok"]
    timed = sum(sum((r["metrics"].get("phases_s") or {}).get(p, 0.0) for p in TIMED) for r in ok)
    prepare: dict[str, list[float]] = {}
    for record in ok:
        prepare.setdefault(record["framework"], []).append(record["metrics"]["phases_s"]["prepare"])
    return {"overhead": 1 - timed / wall, "cases": len(ok),
            "prepare": {fw: statistics.median(v) for fw, v in sorted(prepare.items())}}


def summary(results: list[dict[str, Any]]) -> None:
    a = [r for r in results if r["side"] == "A"]
    b = [r for r in results if r["side"] == "B"]
    ratios = [rb["wall_s"] / ra["wall_s"] for ra, rb in zip(a, b)]
    ratio = statistics.median(ratios)
    print(f"B/A wall time, median over {len(ratios)} pairs: {ratio:.3f} (speed-up {1 / ratio:.2f}x; "
          f"pairs {', '.join(f'{x:.3f}' for x in ratios)})")
    for name, runs in (("A (spawn)", a), ("B (fork)", b)):
        line = f"{name}: wall median {statistics.median(r['wall_s'] for r in runs):.1f} s"
        if all("overhead" in r for r in runs):
            line += f", overhead share median {statistics.median(r['overhead'] for r in runs):.1%}"
            frameworks = sorted({fw for r in runs for fw in r["prepare"]})
            line += ", prepare median " + ", ".join(
                f"{fw} {statistics.median(r['prepare'][fw] for r in runs if fw in r['prepare']):.2f} s"
                for fw in frameworks)
        print(line)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--suite", action="store_true", help="time the test suite instead of a run")
    parser.add_argument("--a-checkout", type=Path, metavar="DIR", help="run side A from this checkout")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the run folders here")
    parser.add_argument("rest", nargs="*", help="after --: dlbench run's (or pytest's) arguments")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="dlbench-launch-") as tmp:
        work = args.keep or Path(tmp)
        for pair in range(args.pairs):
            for name in (("A", "B") if pair % 2 == 0 else ("B", "A")):
                results.append(one_run(name, args, work, pair))
    summary(results)
    finished = [r["rc"] == 0 if args.suite else r["rc"] in (0, 1) for r in results]  # 1: a case failed
    return 0 if all(finished) else 1


if __name__ == "__main__":
    sys.exit(main())
