"""Does fixing glibc's malloc thresholds (dlbench.machine.environment.ALLOCATOR_ENV) make CPU training cheaper and steadier?

    python benchmarks/allocator.py [--models cnn,mlp] [--pairs 3] [--steps 40] [--threads 2]

Each arm is a fresh process running plain PyTorch training steps (``plain_pytorch.build``, batch 128,
random data): A = with dlbench's allocator settings, B = glibc's adaptive thresholds, in the order
A B B A ... . Per step it prints minor page faults and CPU milliseconds (both hold on a machine shared
with other work: a fault count does not depend on load, CPU time much less than wall time) and wall
milliseconds, medians over pairs, with the ratio fixed / glibc.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

PROBE = r"""
import json, resource, sys, time
import torch
sys.path.insert(0, sys.argv[3])
from plain_pytorch import build
torch.set_num_threads(int(sys.argv[2]))
torch.manual_seed(0)
model = build(torch, sys.argv[1])
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
loss = torch.nn.CrossEntropyLoss()
def step():
    opt.zero_grad(set_to_none=True); loss(model(x), y).backward(); opt.step()
for _ in range(3):
    step()
steps = int(sys.argv[4])
f0, c0, w0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time(), time.perf_counter()
for _ in range(steps):
    step()
print(json.dumps({"faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / steps,
                  "cpu_ms": (time.process_time() - c0) / steps * 1e3,
                  "wall_ms": (time.perf_counter() - w0) / steps * 1e3}))
"""


def probe(model: str, fixed: bool, threads: int, steps: int) -> dict[str, float]:
    from dlbench.machine.environment import ALLOCATOR_ENV

    env = {k: v for k, v in os.environ.items() if k not in ALLOCATOR_ENV}
    env.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)})
    if fixed:
        env.update(ALLOCATOR_ENV)
    done = subprocess.run([sys.executable, "-c", PROBE, model, str(threads), str(HERE), str(steps)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="cnn,mlp")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print("| model | faults/step fixed | faults/step glibc | CPU ms/step fixed / glibc | wall ms/step fixed / glibc |")
    print("|---|---|---|---|---|")
    for model in args.models.split(","):
        arms: dict[bool, list[dict[str, float]]] = {True: [], False: []}
        for pair in range(args.pairs):
            for fixed in ((True, False) if pair % 2 == 0 else (False, True)):
                arms[fixed].append(probe(model, fixed, args.threads, args.steps))
        med = {arm: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for arm, runs in arms.items()}
        a, b = med[True], med[False]
        print(f"| {model} | {a['faults']:,.0f} | {b['faults']:,.0f} | {a['cpu_ms']:.0f} / {b['cpu_ms']:.0f} = "
              f"{a['cpu_ms'] / b['cpu_ms']:.2f} | {a['wall_ms']:.0f} / {b['wall_ms']:.0f} = "
              f"{a['wall_ms'] / b['wall_ms']:.2f} |")
    print(f"(medians over {args.pairs} pairs, order A B B A, {args.steps} steps after 3 warm-up steps, "
          f"{args.threads} threads, batch 128)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
