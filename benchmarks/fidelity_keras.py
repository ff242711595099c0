"""Fidelity of the keras plugin: does dlbench measure what plain Keras achieves?

    python benchmarks/fidelity_keras.py [--pairs 4] [--threads 2] [--models cnn,mlp,lstm] [--steps mlp=1500]

For each model, runs A = ``dlbench run -f keras ...`` and B = ``benchmarks/plain_keras.py`` (a plain
``model.fit`` / ``predict_on_batch`` script) alternately A B B A ... in fresh processes, takes the
medians of training and inference samples/s, and prints the ratios dlbench / plain (goal: >= 0.95).
Each run trains about 5-10 s; on a busy machine the ratios are noisy -- rerun on an idle one.
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
TASKS = {"cnn": "fashion_mnist", "mlp": "fashion_mnist", "lstm": "synthetic_text"}
STEPS = {"cnn": 300, "mlp": 1000, "lstm": 40}  # about 5-10 s of training each on 2 idle cores
BATCH = 128


class RunFailed(Exception):
    pass


def run_dlbench(model: str, steps: int, threads: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="fidelity-") as out:
        cmd = [sys.executable, "-m", "dlbench.cli", "run", "-f", "keras", "-m", model, "-t", TASKS[model],
               "--steps", str(steps), "--batch-size", str(BATCH), "--infer-batch-size", str(BATCH),
               "--threads", str(threads), "--out", out]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        results = Path(out) / "results.jsonl"
        if not results.exists():
            raise RunFailed(f"dlbench run failed ({proc.returncode}): {proc.stderr[-500:]}")
        record = json.loads(results.read_text().splitlines()[-1])
    if record.get("status") != "ok":
        raise RunFailed(f"dlbench case {model} {record.get('status')}: {record.get('error')}")
    metrics = record["metrics"]
    return {"train": metrics["train_samples_per_s"], "infer": metrics["infer_samples_per_s"]}


def run_plain(model: str, steps: int, threads: int) -> dict[str, float]:
    cmd = [sys.executable, str(HERE / "plain_keras.py"), model, "--steps", str(steps), "--threads", str(threads),
           "--batch-size", str(BATCH)]
    from dlbench.machine.environment import allocator_env

    env = {**os.environ, **allocator_env(dict(os.environ))}  # the allocator settings dlbench's workers get
    from dlbench.machine.environment import pinning

    proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          preexec_fn=pinning(threads))  # on the cores dlbench pins its worker to
    if proc.returncode != 0:
        raise RunFailed(f"plain_keras.py {model} failed: {proc.stderr[-500:]}")
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    from dlbench.stats.estimators import DEFAULT_ESTIMATOR, estimate

    return {"train": line["train_samples_per_s"], "infer": line["infer_samples_per_s"],
            "train_blocks": line["train_samples_per_s_block_median"],
            # dlbench's estimator applied to the plain script's own blocks: the like-for-like comparison
            "train_same": estimate(line["train_blocks"], DEFAULT_ESTIMATOR) if line.get("train_blocks") else line["train_samples_per_s"],
            "infer_same": estimate(line["infer_blocks"], DEFAULT_ESTIMATOR) if line.get("infer_blocks") else line["infer_samples_per_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4, help="A/B pairs per model, ordered A B B A ...")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="cnn,mlp,lstm")
    parser.add_argument("--steps", default="", help="per-model overrides, e.g. mlp=1500,lstm=40")
    args = parser.parse_args()
    steps = dict(STEPS)
    for item in filter(None, args.steps.split(",")):
        name, value = item.split("=")
        steps[name] = int(value)

    rows = []
    for model in args.models.split(","):
        runs: dict[str, list[dict[str, float]]] = {"dlbench": [], "plain": []}
        for pair in range(args.pairs):
            order = ("dlbench", "plain") if pair % 2 == 0 else ("plain", "dlbench")
            for which in order:
                run = run_dlbench if which == "dlbench" else run_plain
                try:
                    result = run(model, steps[model], args.threads)
                except RunFailed as exc:  # reported, not fatal: the other runs still count
                    print(f"  {model} pair {pair + 1} {which:7s} FAILED: {exc}", file=sys.stderr, flush=True)
                    continue
                runs[which].append(result)
                blocks = f"  (blocks {result['train_blocks']:,.0f}/s)" if "train_blocks" in result else ""
                print(f"  {model} pair {pair + 1} {which:7s} train {result['train']:10,.0f}/s  "
                      f"infer {result['infer']:10,.0f}/s{blocks}", file=sys.stderr, flush=True)
        if not runs["dlbench"] or not runs["plain"]:
            print(f"  {model}: no successful runs on one side; skipped", file=sys.stderr)
            continue
        row = {"model": model, "task": TASKS[model], "steps": steps[model]}
        for metric in ("train", "infer"):
            ours = statistics.median(r[metric] for r in runs["dlbench"])
            plain = statistics.median(r[metric] for r in runs["plain"])
            row.update({f"{metric}_dlbench": ours, f"{metric}_plain": plain, f"{metric}_ratio": ours / plain})
        blocks = statistics.median(r["train_blocks"] for r in runs["plain"])
        row.update({"train_plain_blocks": blocks, "train_ratio_blocks": row["train_dlbench"] / blocks})
        for metric in ("train", "infer"):
            same = statistics.median(r[f"{metric}_same"] for r in runs["plain"])
            row[f"{metric}_ratio_same"] = row[f"{metric}_dlbench"] / same
        rows.append(row)

    print(f"\nkeras fidelity: medians of {args.pairs} A/B pairs, threads {args.threads}, batch {BATCH} "
          "(train and infer), goal ratio >= 0.95")
    print("plain train/s: wall time over the steady batches (epoch ends included); plain blocks/s: median over "
          "blocks of >= 0.15 s, summarised like dlbench's own number")
    print("| model | task | steps | train dlbench/s | train plain/s | ratio | plain blocks/s | ratio | "
          "infer dlbench/s | infer plain/s | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['task']} | {r['steps']} | {r['train_dlbench']:,.0f} | {r['train_plain']:,.0f} | "
              f"{r['train_ratio']:.3f} | {r['train_plain_blocks']:,.0f} | {r['train_ratio_blocks']:.3f} | "
              f"{r['infer_dlbench']:,.0f} | {r['infer_plain']:,.0f} | {r['infer_ratio']:.3f} |")
    print("same estimator (dlbench's, applied to the plain script's own blocks), two-sided goal 0.95..1.053: "
          + ", ".join(f"{r['model']} train {r['train_ratio_same']:.3f} infer {r['infer_ratio_same']:.3f}" for r in rows))
    print(json.dumps(rows))
    off = [r["model"] for r in rows if not all(0.95 <= r[f"{m}_ratio_same"] <= 1 / 0.95 for m in ("train", "infer"))]
    if off:  # a ratio far above 1 is as wrong as one below
        print(f"outside 0.95..{1 / 0.95:.3f} on the same estimator: {', '.join(off)}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
