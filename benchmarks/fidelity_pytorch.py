"""Fidelity of the pytorch plugin: does dlbench measure what a plain PyTorch script achieves?

    python benchmarks/fidelity_pytorch.py [--pairs 4] [--models cnn,mlp,lstm] [--scale 1.0] [--device gpu]
        [--image-task synthetic_images] [--batch-sizes 128,2048]

(benchmarks/fidelity_jax.py runs the same comparison for the jax plugin against benchmarks/plain_jax.py.)

For each model, runs A = ``dlbench run -f pytorch ...`` and B = ``benchmarks/plain_pytorch.py`` as
subprocesses in the order A B B A A B B A ... (``--pairs`` pairs, so drifting machine load hits both
alike), takes the median training and inference samples/s of each, and prints the dlbench / plain
ratios. A faithful harness is within a few percent of the plain loop, on both sides: the check is on the
same estimator both sides (dlbench's estimator applied to the plain script's own block rates, "same
estimator" columns) and two-sided, 0.95 <= ratio <= 1/0.95, since a ratio far above 1 (dlbench faster
than the plain loop: a summary that favours fast blocks, or a plain loop slowed by what it includes) is
as wrong as one below; exits 1 otherwise
(or when a run failed). Both sides get the same thread budget (torch threads and OMP/MKL variables) and
identical data arrays. dlbench reports the median of timed blocks, the plain script the whole run's
rate; on a busy machine the median resists load spikes that the whole-run rate absorbs, so the table
also shows dlbench against the plain script's own median block rate ("train ratio, block medians").
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
PLAIN = HERE / "plain_pytorch.py"
BATCH = 128
# framework -> (its plain script, how that script names the devices)
PLAIN_SCRIPTS = {"pytorch": (PLAIN, {"cpu": "cpu", "gpu": "cuda"}),
                 "jax": (HERE / "plain_jax.py", {"cpu": "cpu", "gpu": "gpu"})}
THRESHOLD = 0.95

# model -> (task, training steps): about 5-10 s of training each on 2 idle cores
CASES = {"cnn": ("fashion_mnist", 400), "mlp": ("fashion_mnist", 3000), "lstm": ("synthetic_text", 60)}


def thread_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    env["PYTHONUNBUFFERED"] = "1"
    from dlbench.machine.environment import allocator_env

    env.update(allocator_env(env))  # the plain loop gets the allocator settings dlbench's workers get
    return env


class RunFailed(Exception):
    pass


def run_dlbench(model: str, task: str, steps: int, threads: int, device: str = "cpu", batch: int = BATCH,
                framework: str = "pytorch") -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="dlbench-fidelity-") as out:
        command = [sys.executable, "-m", "dlbench.cli", "run", "-f", framework, "-m", model, "-t", task,
                   "--steps", str(steps), "--batch-size", str(batch), "--infer-batch-size", str(batch),
                   "--threads", str(threads), "--device", device, "--out", out]
        process = subprocess.run(command, capture_output=True, text=True, env=thread_env(threads))
        results = Path(out) / "results.jsonl"
        records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()] \
            if results.exists() else []
        ok = [r for r in records if r.get("status") == "ok"]
        if process.returncode != 0 or not ok:
            errors = "; ".join(str(r.get("error", "")) for r in records) or process.stderr[-2000:]
            raise RunFailed(f"dlbench run failed for {model}: {errors}")
        metrics = ok[0]["metrics"]
        return {"train": metrics["train_samples_per_s"], "infer": metrics["infer_samples_per_s"]}


def run_plain(model: str, task: str, steps: int, threads: int, device: str = "cpu", batch: int = BATCH,
              framework: str = "pytorch") -> dict[str, float]:
    script, devices = PLAIN_SCRIPTS[framework]
    command = [sys.executable, str(script), model, "--steps", str(steps), "--threads", str(threads),
               "--batch-size", str(batch), "--infer-batch-size", str(batch), "--task", task,
               "--device", devices[device]]
    from dlbench.machine.environment import pinning

    process = subprocess.run(command, capture_output=True, text=True, env=thread_env(threads),
                             preexec_fn=pinning(threads))  # on the cores dlbench pins its worker to
    if process.returncode != 0:
        raise RunFailed(f"{script.name} failed for {model}: {process.stderr[-2000:]}")
    result = json.loads(process.stdout.strip().splitlines()[-1])
    from dlbench.stats.estimators import DEFAULT_ESTIMATOR, estimate

    same = {"train_same": estimate(result["train_blocks"], DEFAULT_ESTIMATOR)}  # dlbench's estimator, plain's blocks
    if result.get("infer_blocks"):
        same["infer_same"] = estimate(result["infer_blocks"], DEFAULT_ESTIMATOR)
    return {"train": result["train_samples_per_s"], "infer": result["infer_samples_per_s"],
            "train_block_median": result["train_block_median_samples_per_s"], **same}


def alternate(args: argparse.Namespace, framework: str, model: str, task: str, steps: int, batch: int,
              failures: list[str]) -> dict[str, list[dict[str, float]]]:
    """``args.pairs`` pairs of dlbench and the plain loop, A B B A; a failed run is noted and skipped."""
    runs: dict[str, list[dict[str, float]]] = {"dlbench": [], "plain": []}
    for pair in range(args.pairs):
        for side in (("dlbench", "plain") if pair % 2 == 0 else ("plain", "dlbench")):
            try:
                result = run_dlbench(model, task, steps, args.threads, args.device, batch, framework) \
                    if side == "dlbench" else run_plain(model, task, steps, args.threads, args.device, batch,
                                                        framework)
            except RunFailed as exc:  # one failed run must not lose an hour of measurements
                failures.append(str(exc))
                print(f"  {model:5s} pair {pair + 1} {side:7s} FAILED: {exc}", file=sys.stderr, flush=True)
                continue
            runs[side].append(result)
            print(f"  {model:5s} batch {batch:5d} pair {pair + 1} {side:7s} train {result['train']:10.1f}  "
                  f"infer {result['infer']:10.1f} samples/s", file=sys.stderr, flush=True)
    return runs


def main(framework: str = "pytorch", cases: dict = CASES, description: str = "") -> int:
    parser = argparse.ArgumentParser(description=description or __doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4, help="A/B pairs per model, alternating A B B A")
    parser.add_argument("--models", default=",".join(cases), help=f"comma-separated, from {', '.join(cases)}")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every model's training steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", metavar="PATH", help="also write every measurement here")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu", help="gpu: CUDA on both sides")
    parser.add_argument("--image-task", help="run the image models on this task instead (e.g. synthetic_images "
                                             "where Fashion-MNIST is absent)")
    parser.add_argument("--batch-sizes", default=str(BATCH),
                        help="comma-separated training (and inference) batches, e.g. 128,2048 (the knee)")
    args = parser.parse_args()
    batches = [int(b) for b in args.batch_sizes.split(",") if b.strip()]

    rows, raw, failures = [], {}, []
    for model, batch in [(m.strip(), b) for m in args.models.split(",") if m.strip() for b in batches]:
        task, steps = cases[model]
        if args.image_task and task != "synthetic_text":
            task = args.image_task
        steps = max(10, int(steps * args.scale * BATCH / batch))  # about the same seconds at every batch
        runs = alternate(args, framework, model, task, steps, batch, failures)
        raw[f"{model}@{batch}"] = {"task": task, "steps": steps, "batch_size": batch, **runs}
        if not runs["dlbench"] or not runs["plain"]:
            continue
        median = {side: {key: statistics.median(r[key] for r in results) for key in results[0]}
                  for side, results in runs.items()}
        ours, plain = median["dlbench"], median["plain"]
        rows.append([f"{model}@{batch}", task, steps, f"{len(runs['dlbench'])}/{len(runs['plain'])}",
                     ours["train"], plain["train"], ours["train"] / plain["train"],
                     ours["train"] / plain["train_block_median"],
                     ours["infer"], plain["infer"], ours["infer"] / plain["infer"],
                     ours["train"] / plain["train_same"],
                     ours["infer"] / plain["infer_same"] if "infer_same" in plain else ours["infer"] / plain["infer"]])

    headers = ["model@batch", "task", "steps", "runs", "dlbench train/s", "plain train/s", "train ratio",
               "train ratio, block medians", "dlbench infer/s", "plain infer/s", "infer ratio",
               "train ratio, same estimator", "infer ratio, same estimator"]
    try:
        from tabulate import tabulate

        print(tabulate(rows, headers=headers, floatfmt=".3g", tablefmt="github"))
    except ImportError:
        print("\t".join(headers))
        for row in rows:
            print("\t".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row))
    print(f"({framework}: medians over runs, {args.pairs} pairs planned; device {args.device}, threads {args.threads}; "
          f"inference at the training batch; ratios checked within {THRESHOLD}..{1 / THRESHOLD:.3f})")
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=1))
    # two-sided, on the same estimator both sides: a ratio far above 1 is as wrong as one below
    low = [row[0] for row in rows if not all(THRESHOLD <= ratio <= 1 / THRESHOLD for ratio in row[11:13])]
    if low:
        print(f"outside {THRESHOLD}..{1 / THRESHOLD:.3f} (same estimator both sides): {', '.join(low)}", file=sys.stderr)
    for failure in failures:
        print(f"failed: {failure}", file=sys.stderr)
    return 1 if low or failures else 0


if __name__ == "__main__":
    sys.exit(main())
