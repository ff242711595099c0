"""Does keeping JAX inside its thread budget (dlbench.jax_thread_budget) cost throughput?

    python benchmarks/thread_budget.py [--models cnn,mlp] [--threads 1,2] [--pairs 1] [--seconds 2]

Each arm is a fresh process running the dlbench-jax session (``dlbench.testing.random_setup``, batch 128)
for ``--seconds`` of training and of Offline inference (batch 1024), with dlbench's thread meter around
every call: A = the earlier settings (``NPROC`` = budget, ``--xla_cpu_multi_thread_eigen=false`` at 1),
B = ``jax_thread_budget`` (also the sequential-schedule flag and no CPU async dispatch), in the order
A B B A per pair. It prints, per model and budget, the medians of samples/s and of ``concurrency`` (threads'
worth of CPU kept busy, the load divided out) and the ratio B / A. On a machine shared with other work the
throughputs move 20-40% within minutes: read the ratios, and note that A used more than its budget.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

PROBE = r"""
import json, os, sys, time
threads, model, seconds, arm = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
os.environ["JAX_PLATFORMS"] = "cpu"
if arm == "A":
    os.environ["NPROC"] = str(threads)
    if threads == 1:
        os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"
else:
    from dlbench import jax_thread_budget
    jax_thread_budget(threads, "cpu")
from dlbench.testing import random_setup
from dlbench.measure.thread_meter import ThreadMeter
from dlbench_jax.session import JaxSession
setup = random_setup(model, samples=4096, batch_size=128, threads=threads, variant="jit")
session = JaxSession(setup, f"arm {arm}")
x = session.stage(setup.data.x_train[:1024])
session.train(5); session.predict(x); session.sync()
out = {}
for phase in ("train", "infer"):
    meter, calls, end = ThreadMeter(), 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        meter.start()
        session.train(10) if phase == "train" else session.predict(x)
        session.sync()
        meter.stop()
        calls += 1
    out[phase] = calls * (10 * 128 if phase == "train" else 1024) / meter.wall_s
    out[phase + "_concurrency"] = meter.concurrency()
print(json.dumps(out))
"""


def probe(threads: int, model: str, seconds: float, arm: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("NPROC", "XLA_FLAGS")}
    env.update({name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    done = subprocess.run([sys.executable, "-c", PROBE, str(threads), model, str(seconds), arm], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"arm {arm} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="cnn,mlp")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--pairs", type=int, default=1, help="A B B A rounds per model and budget")
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per phase and arm")
    args = parser.parse_args()
    print(f"{'model':6} {'budget':>6} {'phase':6} {'A samples/s':>12} {'B samples/s':>12} {'B/A':>6} "
          f"{'A threads':>9} {'B threads':>9}")
    for model in args.models.split(","):
        for threads in map(int, args.threads.split(",")):
            runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
            for _ in range(args.pairs):
                for arm in "ABBA":
                    runs[arm].append(probe(threads, model, args.seconds, arm))
            for phase in ("train", "infer"):
                a, b = (statistics.median(r[phase] for r in runs[arm]) for arm in "AB")
                ca, cb = (statistics.median(r[phase + "_concurrency"] for r in runs[arm]) for arm in "AB")
                print(f"{model:6} {threads:>6} {phase:6} {a:>12.0f} {b:>12.0f} {b / a:>6.2f} {ca:>9.2f} {cb:>9.2f}",
                      flush=True)


if __name__ == "__main__":
    main()
