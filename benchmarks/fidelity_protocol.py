"""The protocol of benchmarks/fidelity_pytorch.py and fidelity_keras.py: does dlbench measure what a plain loop gets?

Per model, A = ``dlbench run`` and B = a plain loop (``--loop tutorial``: tutorial_<framework>.py, written as
the tutorials write it; ``--loop script``: plain_<framework>.py, which mirrors dlbench's choices) run in fresh
processes A B B A ..., both in one environment (``--environment``):

- ``dlbench`` (default): what dlbench gives its workers (dlbench.machine.environment): glibc's malloc
  thresholds at 1 GiB, pinned to the last cores, a core left free (default threads: every core but one);
- ``user``: glibc and the scheduler as shipped, unpinned, every core (``dlbench run --environment user``).

Both sides get the thread variables of the budget. The plain loop marks its clocks after every step and call
(benchmarks/clock_marks.py); its blocks are cut from the marks with exactly as many steps as dlbench's blocks
held (the record's ``block_steps``) and summarised with dlbench's estimator. Compared, as medians over runs:

- wall: dlbench's ``train_samples_per_s`` / the plain loop's, same estimator, same block length;
- CPU: the same on the CPU clock (``train_cpu_samples_per_s``, samples per CPU second of the process), which
  other processes' load hardly moves;
- whole run, for information only: dlbench's number / the plain loop's whole-run rate, the ratio issue 27
  reported (1.30), which sets a median of short blocks against a mean that takes in every load burst.

Verdict: pass when both the wall and the CPU ratio lie in 0.95..1/0.95 (training; Offline inference too
with ``--loop script``); no verdict when the machine was loaded during a run (others' load beyond the cores
the budget leaves free, dlbench's own ``disturbed`` flags but ``paging``, a one-thread plain loop that got under 0.9 of its
core; the last two only when other processes kept a quarter of a core busy: else they are the framework's own
threads or idle time, on both sides alike); fail when the allocator regimes differ (over 1,000 minor faults a step on one side and under half as
many on the other: a plain loop that did not get the thresholds, or, with glibc's defaults, two processes
whose histories left glibc's adaptive thresholds in different states); no verdict either when one side's runs
were not one measurement (their faults per step that far apart, or their rates more than 1.25x: RUN_SPREAD),
unless each side ran at least 6 times and dlbench compare's test (dlbench.stats.decide) calls them the same
within the band, one value a run (spread_verdicts; the interval is shown either way).
Exit 0 all passed, 1 a failure or a failed run, 3 no verdict.
docs/fidelity.md has the measurements and what the ratios meant.
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
from pathlib import Path
from typing import Any, Callable, Optional

from dlbench.machine.environment import ENVIRONMENTS, default_threads, pinning, worker_environment
from dlbench.machine.state import PAGING_FLAG, Sampler
from dlbench.measure.profiles import get_profile
from dlbench.stats.decide import Decision, decide
from dlbench.stats.estimators import DEFAULT_ESTIMATOR, estimate

HERE = Path(__file__).resolve().parent
BATCH = 128
THRESHOLD = 0.95
# Minor faults a training step: with the thresholds 0-20 (up to ~400 in a short budget's first blocks while the
# heap still grows); with glibc's defaults cnn and lstm training take 1,100-21,000, and how many depends on what
# the process did before (one evaluation at batch 1,024 took the tutorial cnn from 10,463 to 135). Two sides
# whose counts differ by more than FAULTS_RATIO, the larger above HIGH_FAULTS, ran in different allocator states.
HIGH_FAULTS, FAULTS_RATIO = PAGING_FLAG, 2.0  # the level from which dlbench flags a case 'paging'
# Runs of one side whose training rates spread wider than this (fastest / slowest), or whose faults per step
# differ as above, did not measure one thing: with glibc's defaults a PyTorch CNN's regime is drawn per process
# even after an evaluation (15-1,952 faults a step for dlbench's worker, 0-3,284 for the tutorial loop, at one
# thread on a quiet VM), and two threads on two cores run a PyTorch mlp at ~78k or ~115k samples/s. A median of
# four such runs against four others is a coin toss: no verdict, and the spread is shown.
RUN_SPREAD = 1.25
# ... unless each side ran at least MIN_SPREAD_RUNS times and dlbench compare's statistics call the two sides
# "same" within the band, one value a run (spread_verdicts): then it is a pass however the runs spread. With 8
# pairs the PyTorch cnn at one thread in the user's environment read 1.017, its 95% interval 0.916-1.194: no verdict.
MIN_SPREAD_RUNS = 6
MIN_SHARE = 0.9  # of its core a one-thread plain loop must get for a verdict ...
# ... unless the machine was quiet: other processes used under this many cores during the run. Then a low share,
# or a worker thread that waited for the CPU, is the framework's own doing (a Keras loop idles at its epoch ends,
# TensorFlow's threads queue for one pinned core), the same on both sides, not load: a quiet 2-core VM gave
# Keras mlp and cnn "no verdict: loaded" for that alone.
QUIET_OTHERS = 0.25
INFER_BLOCK_S = get_profile("quick").infer_min_block_s  # dlbench's Offline blocks at the default budget
KEYS = ("train", "train_cpu", "whole", "train_share", "faults", "infer", "infer_cpu", "block_steps")

PlainCommand = Callable[[argparse.Namespace, str, str, int], list[str]]  # (args, model, task, steps) -> argv


class RunFailed(Exception):
    pass


def tutorial_options(args: argparse.Namespace) -> list[str]:
    """The tutorial loop's batch order, and in the user's environment one evaluation before training: dlbench's
    worker evaluates once there too, so both sides train in the allocator state a script reaches after its
    first epoch (docs/fidelity.md, section 4)."""
    return ["--order", args.order] + (["--evaluate-first"] if args.environment == "user" else [])


def measured(command: list[str], env: dict[str, str], threads: int,
             pin: Any = None) -> tuple[Any, list[str], float]:
    """Run ``command``; (the finished process, why the machine was not quiet meanwhile: dlbench's flags, and the
    cores other processes kept busy on average)."""
    sampler = Sampler(threads).start()  # others' load = busy cores minus this process and its children
    process = subprocess.run(command, capture_output=True, text=True, env=env, preexec_fn=pin)
    state = sampler.stop()
    return process, list(state.get("flags") or []), float(state.get("others_cores") or 0.0)


def run_dlbench(args: argparse.Namespace, framework: str, model: str, task: str, steps: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dlbench-fidelity-") as out:
        command = [sys.executable, "-m", "dlbench.cli", "run", "-f", framework, "-m", model, "-t", task,
                   "--steps", str(steps), "--batch-size", str(args.batch), "--infer-batch-size", str(args.batch),
                   "--threads", str(args.threads), "--environment", args.environment, "--device", args.device,
                   "--out", out]
        process, loaded, others = measured(command, dict(os.environ), args.threads)  # dlbench sets up its worker
        results = Path(out) / "results.jsonl"
        records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()] \
            if results.exists() else []
    ok = [r for r in records if r.get("status") == "ok"]
    if process.returncode != 0 or not ok:
        errors = "; ".join(str(r.get("error", "")) for r in records) or process.stderr[-2000:]
        raise RunFailed(f"dlbench run failed for {model}: {errors}")
    m = ok[0]["metrics"]
    return {"train": m["train_samples_per_s"], "train_cpu": m.get("train_cpu_samples_per_s"),
            "train_share": m.get("train_cpu_share"), "faults": m.get("train_faults_per_step"),
            "infer": m["infer_samples_per_s"], "infer_cpu": m.get("infer_cpu_samples_per_s"),
            "block_steps": m.get("block_steps"), "others_cores": others,
            "loaded": loaded + [flag for flag in m.get("disturbed") or []  # paging: judged by faults, below
                                if not (flag.startswith("wait") and others < QUIET_OTHERS)
                                and not flag.startswith("paging")]}


def run_plain(args: argparse.Namespace, command: list[str], model: str) -> dict[str, Any]:
    """The plain loop in the worker's environment, on the worker's CPUs; its raw marks, summarised later."""
    env = worker_environment(args.threads, verbose=False, environment=args.environment)
    process, loaded, others = measured(command, env, args.threads, pinning(args.threads, args.environment))
    if process.returncode != 0:
        raise RunFailed(f"{Path(command[1]).name} failed for {model}: {process.stderr[-2000:]}")
    return {**json.loads(process.stdout.strip().splitlines()[-1]), "loaded": loaded, "others_cores": others}


def cut(marks: list[list[float]], per_block: int, skip: int = 0) -> tuple[list[float], list[float]]:
    """Samples/s of consecutive blocks of ``per_block`` steps (calls) after the first ``skip`` steps, on the
    wall clock and on the CPU clock; marks of no steps (Keras between epochs) stay in the block holding them."""
    start = next((i for i, mark in enumerate(marks) if mark[0] >= skip), len(marks))
    wall: list[float] = []
    cpu: list[float] = []
    first = marks[start] if start < len(marks) else None
    for mark in marks[start + 1:]:
        if mark[0] - first[0] >= per_block:
            samples = mark[1] - first[1]
            wall.append(samples / (mark[2] - first[2]))
            if mark[3] > first[3]:
                cpu.append(samples / (mark[3] - first[3]))
            first = mark
    return wall, cpu


def summarise_plain(raw: dict[str, Any], block_steps: int, threads: int) -> dict[str, Any]:
    """One plain run as dlbench would have summarised it: blocks of ``block_steps``, dlbench's estimator."""
    marks, skip = raw["train_marks"], raw.get("warmup", 0)
    wall, cpu = cut(marks, block_steps, skip)
    first = next(mark for mark in marks if mark[0] >= skip)
    last = marks[-1]
    share = (last[3] - first[3]) / (last[2] - first[2])
    calls = raw["infer_marks"]
    call_s = statistics.median((b[2] - a[2]) / max(1, b[0] - a[0]) for a, b in zip(calls, calls[1:])) \
        if len(calls) > 2 else 1.0  # seconds a call (CUDA marks every 64 calls)
    infer_wall, infer_cpu = cut(calls, max(1, math.ceil(INFER_BLOCK_S / max(call_s, 1e-9))))
    busy_machine = raw.get("others_cores", 1.0) >= QUIET_OTHERS  # unknown: as if busy
    loaded = list(raw["loaded"]) + ([f"own share {share:.2f}"] if threads == 1 and share < MIN_SHARE and busy_machine
                                    else [])
    return {"train": _estimate(wall), "train_cpu": _estimate(cpu), "whole": raw["train_samples_per_s"],
            "train_share": share, "faults": (last[4] - first[4]) / max(1, last[0] - first[0]),
            "infer": _estimate(infer_wall), "infer_cpu": _estimate(infer_cpu), "loaded": loaded}


def _estimate(rates: list[float]) -> Optional[float]:
    return estimate(rates, DEFAULT_ESTIMATOR) if rates else None


def _median(runs: list[dict[str, Any]], key: str) -> Optional[float]:
    values = [run[key] for run in runs if isinstance(run.get(key), (int, float))]
    return statistics.median(values) if values else None


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a and b else None


def faults_apart(low: float, high: float) -> bool:
    """Two faults-per-step figures from different allocator states (HIGH_FAULTS, FAULTS_RATIO)."""
    return high > HIGH_FAULTS and high > FAULTS_RATIO * max(low, 1.0)


def spread(side: str, runs: list[dict[str, Any]]) -> Optional[str]:
    """Why one side's runs are not one measurement (their faults per step or rates too far apart), or None."""
    faults = [run["faults"] for run in runs if isinstance(run.get("faults"), (int, float))]
    rates = [run["train"] for run in runs if isinstance(run.get("train"), (int, float)) and run["train"] > 0]
    if faults and faults_apart(min(faults), max(faults)):
        return f"{side} faults/step {min(faults):,.0f}-{max(faults):,.0f}"
    if len(rates) > 1 and max(rates) > RUN_SPREAD * min(rates):
        return f"{side} train/s {min(rates):,.0f}-{max(rates):,.0f}"
    return None


def spread_verdicts(judged: list[str], dl_runs: list[dict], plain_runs: list[dict]) -> dict[str, Decision]:
    """When a side's runs spread: dlbench's verdict on each judged training ratio (wall, CPU), one value a run, as
    ``dlbench compare`` decides (dlbench.stats.decide: Welch on the logs; "same" only when the whole interval of
    the change lies within the band). {} when it cannot say for every judged ratio (under MIN_SPREAD_RUNS runs
    a side, or Offline judged too)."""
    if set(judged) - {"wall", "cpu"}:
        return {}
    values = {k: [[run[key] for run in runs if run.get(key)] for runs in (plain_runs, dl_runs)]
              for k, key in (("wall", "train"), ("cpu", "train_cpu")) if k in judged}
    if any(min(len(side) for side in sides) < MIN_SPREAD_RUNS for sides in values.values()):
        return {}
    return {k: decide(base, new, 1 - THRESHOLD, True, 0.05) for k, (base, new) in values.items()}  # 0.95-1.05


def compare_model(model: str, dl_runs: list[dict], plain_raws: list[dict], judge_infer: bool,
                  threads: int, cpu_clock: bool = True) -> dict[str, Any]:
    """The model's row: medians, ratios, per-pair wall ratios, and the verdict."""
    block_steps = int(_median(dl_runs, "block_steps") or 1)
    plain_runs = [summarise_plain(raw, block_steps, threads) for raw in plain_raws]
    ours = {key: _median(dl_runs, key) for key in KEYS}
    plain = {key: _median(plain_runs, key) for key in KEYS}
    ratios = {"wall": _ratio(ours["train"], plain["train"]), "cpu": _ratio(ours["train_cpu"], plain["train_cpu"]),
              "whole": _ratio(ours["train"], plain["whole"]), "infer": _ratio(ours["infer"], plain["infer"]),
              "infer_cpu": _ratio(ours["infer_cpu"], plain["infer_cpu"])}
    judged = ["wall", "cpu"] + (["infer", "infer_cpu"] if judge_infer else [])
    if not cpu_clock:  # a GPU case: the host's CPU time is its wait for the device, not the work
        judged = [k for k in judged if not k.endswith("cpu")]
    loaded = sorted({flag for run in dl_runs + plain_runs for flag in run["loaded"]})
    faults = sorted(f for f in (ours["faults"], plain["faults"]) if f is not None)
    unsettled = [why for side, runs in (("dlbench", dl_runs), ("plain", plain_runs)) if (why := spread(side, runs))]
    outside = [k for k in judged if not (ratios[k] and THRESHOLD <= ratios[k] <= 1 / THRESHOLD)]
    decided = spread_verdicts(judged, dl_runs, plain_runs) if unsettled else {}
    within = bool(decided) and all(d.verdict == "same" for d in decided.values())
    shown = "; ".join(f"{k} {ratios[k]:.3f}, 95% interval {1 + d.ci[0]:.3f}-{1 + d.ci[1]:.3f}"
                      for k, d in decided.items() if d.ci)
    if unsettled and not within:
        why = unsettled + ([f"medians {shown}"] if shown else [])
        verdict = "no verdict: runs differ run to run (" + "; ".join(why) + ")"
    elif not unsettled and len(faults) == 2 and faults_apart(*faults):
        verdict = (f"FAIL: allocator regimes differ (faults/step dlbench {ours['faults']:.0f}, plain "
                   f"{plain['faults']:.0f})")
    elif loaded:
        verdict = "no verdict: loaded (" + ", ".join(loaded) + ")"
    elif unsettled:  # spread, yet the medians' ratio stays in the band wherever a new draw could put it
        verdict = "pass (runs differ run to run: " + "; ".join(unsettled) + f"; medians {shown})"
    else:
        verdict = "pass" if not outside else "FAIL: " + ", ".join(outside)
    pairs = [_ratio(d["train"], p["train"]) for d, p in zip(dl_runs, plain_runs)]
    return {"model": model, "runs": f"{len(dl_runs)}/{len(plain_runs)}", "block_steps": block_steps,
            "dlbench": ours, "plain": plain, "ratios": ratios, "pair_wall_ratios": pairs, "judged": judged,
            "intervals": {k: [1 + d.ci[0], 1 + d.ci[1]] for k, d in decided.items() if d.ci}, "verdict": verdict,
            "dlbench_runs": dl_runs, "plain_runs": plain_runs}


def run_series(args: argparse.Namespace, framework: str, model: str, task: str, steps: int,
               plain_command: PlainCommand, failures: list[str]) -> tuple[list[dict], list[dict]]:
    """``args.pairs`` pairs A B B A ...; a failed run is reported and skipped, never fatal."""
    runs: dict[str, list[dict]] = {"dlbench": [], "plain": []}
    for pair in range(args.pairs):
        for side in (("dlbench", "plain") if pair % 2 == 0 else ("plain", "dlbench")):
            try:
                if side == "dlbench":
                    result = run_dlbench(args, framework, model, task, steps)
                else:
                    result = run_plain(args, plain_command(args, model, task, steps), model)
            except RunFailed as exc:
                failures.append(str(exc))
                print(f"  {model:5s} pair {pair + 1} {side:7s} FAILED: {exc}", file=sys.stderr, flush=True)
                continue
            runs[side].append(result)
            print(f"  {model:5s} pair {pair + 1} {side:7s} {_progress(result)}", file=sys.stderr, flush=True)
    return runs["dlbench"], runs["plain"]


def _progress(result: dict[str, Any]) -> str:
    """A run's line: dlbench's numbers, or the plain loop's whole-run rate (its blocks are cut at the end)."""
    if "train_marks" in result:
        text = f"train {result['train_samples_per_s']:10,.0f}/s whole run"
    else:
        cpu = result.get("train_cpu") or float("nan")
        text = (f"train {result['train']:10,.0f}/s, {cpu:10,.0f}/CPU s, share {result.get('train_share') or 0:.2f}, "
                f"{result.get('faults') or 0:,.0f} faults/step")
    return text + (f"  ({', '.join(result['loaded'])})" if result["loaded"] else "")


def parse_args(framework: str, cases: dict[str, tuple[str, int]], devices: tuple[str, ...],
               loops: tuple[str, ...]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=f"Fidelity of the {framework} plugin against a plain loop "
                                                 "(benchmarks/fidelity_protocol.py says how)")
    parser.add_argument("--pairs", type=int, default=4, help="A/B pairs per model, alternating A B B A")
    parser.add_argument("--models", default=",".join(cases), help=f"comma-separated, from {', '.join(cases)}")
    parser.add_argument("--loop", choices=list(loops), default=loops[0],
                        help=f"tutorial: tutorial_{framework}.py, the tutorials' loop (default); script: "
                             f"plain_{framework}.py, which mirrors dlbench's choices (Offline inference judged too)")
    parser.add_argument("--order", choices=["shuffled", "slices"], default="shuffled",
                        help="the tutorial loop's batches: a new order every epoch (default), or consecutive slices")
    parser.add_argument("--environment", choices=list(ENVIRONMENTS), default="dlbench",
                        help="both sides in dlbench's environment (default) or a user's: " + ENVIRONMENTS["user"])
    parser.add_argument("--threads", type=int, help="thread budget (default: every core but one; every core "
                                                    "with --environment user)")
    parser.add_argument("--steps", default="", help="per-model training steps, e.g. mlp=1500,lstm=40")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every model's training steps")
    parser.add_argument("--device", choices=list(devices), default="cpu")
    parser.add_argument("--batch-sizes", default=str(BATCH),
                        help="comma-separated training (and Offline) batches, e.g. 128,2048 (a GPU's knee); the "
                             "steps shrink with the batch, so every batch trains about as long")
    parser.add_argument("--image-task", help="run the image models on this task (e.g. synthetic_images)")
    parser.add_argument("--json", metavar="PATH", help="also write every run's numbers here")
    args = parser.parse_args()
    args.batches = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    args.batch = args.batches[0]
    if args.threads is None:
        args.threads = default_threads(os.cpu_count() or 1, args.environment)
    if args.loop == "tutorial" and args.device != "cpu":
        parser.error("--loop tutorial runs on the CPU only; use --loop script for --device gpu")
    return args


def steps_of(args: argparse.Namespace, model: str, default: int) -> int:
    overrides = dict(item.split("=") for item in filter(None, args.steps.split(",")))
    return int(overrides[model]) if model in overrides else max(10, int(default * args.scale))


def main(framework: str, cases: dict[str, tuple[str, int]], plain_command: PlainCommand,
         devices: tuple[str, ...] = ("cpu",), loops: tuple[str, ...] = ("tutorial", "script")) -> int:
    """Run the protocol for ``framework``; ``cases``: model -> (task, default training steps at batch 128);
    ``loops``: the plain loops it has, the default first."""
    args = parse_args(framework, cases, devices, loops)
    rows, failures = [], []
    for model in [m.strip() for m in args.models.split(",") if m.strip()]:
        for batch in args.batches:
            args.batch = batch
            task, default = cases[model]
            if args.image_task and task != "synthetic_text":
                task = args.image_task
            steps = max(10, steps_of(args, model, default) * BATCH // batch)  # about as long at every batch
            dl_runs, plain_raws = run_series(args, framework, model, task, steps, plain_command, failures)
            if dl_runs and plain_raws:
                row = compare_model(model if len(args.batches) == 1 else f"{model}@{batch}", dl_runs, plain_raws,
                                    args.loop == "script", args.threads, args.device == "cpu")
                rows.append({**row, "task": task, "steps": steps, "batch": batch})
    print_table(rows, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": vars(args), "rows": rows, "failures": failures},
                                              indent=1, default=str))
    for failure in failures:
        print(f"failed: {failure}", file=sys.stderr)
    verdicts = [row["verdict"] for row in rows]
    if failures or any(v.startswith("FAIL") for v in verdicts):
        return 1
    return 3 if any(not v.startswith("pass") for v in verdicts) else 0


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    def number(value: Optional[float], digits: str = ",.0f") -> str:
        return "-" if value is None else format(value, digits)

    print(f"| model | steps | block | runs | dlbench train/s | plain train/s | wall ratio | dlbench /CPU s | "
          f"plain /CPU s | CPU ratio | whole-run ratio | infer ratio | infer CPU ratio | faults/step | CPU share | "
          f"verdict |\n|{'---|' * 16}")
    for row in rows:
        ours, plain, ratio = row["dlbench"], row["plain"], row["ratios"]
        print(f"| {row['model']} | {row['steps']} | {row['block_steps']} | {row['runs']} | {number(ours['train'])} | "
              f"{number(plain['train'])} | {number(ratio['wall'], '.3f')} | {number(ours['train_cpu'])} | "
              f"{number(plain['train_cpu'])} | {number(ratio['cpu'], '.3f')} | {number(ratio['whole'], '.3f')} | "
              f"{number(ratio['infer'], '.3f')} | {number(ratio['infer_cpu'], '.3f')} | "
              f"{number(ours['faults'])} / {number(plain['faults'])} | {number(ours['train_share'], '.2f')} / "
              f"{number(plain['train_share'], '.2f')} | {row['verdict']} |")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    loop = f"tutorial_*.py ({args.order})" if args.loop == "tutorial" else "plain_*.py"
    print(f"(dlbench / plain loop {loop}, medians over runs, {args.pairs} pairs A B B A; environment "
          f"{args.environment}, {args.threads} thread(s), batch {args.batch_sizes}; ratios on dlbench's estimator over blocks "
          f"of the same steps; judged two-sided {THRESHOLD}..{1 / THRESHOLD:.3f}: training wall and CPU"
          f"{', Offline wall and CPU' if args.loop == 'script' else ''}; load average now {load:.1f})")
    for row in rows:
        print(f"  {row['model']}: per-pair wall ratios "
              + " ".join(number(r, ".3f") for r in row["pair_wall_ratios"]))
