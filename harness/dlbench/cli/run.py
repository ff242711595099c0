"""``dlbench run``: its options, their checks across arguments, a new or resumed run folder, and the run."""

from __future__ import annotations

import argparse
import os
import signal
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

from dlbench.cli import loadgen, sampling
from dlbench.cli.args import EXIT_CASE_FAILED, EXIT_INTERRUPTED, float_in, int_in
from dlbench.errors import UsageError
from dlbench.version import __version__

if TYPE_CHECKING:
    from dlbench.running.options import RunOptions
    from dlbench.running.rundir import RunDir


def add_command(commands: Any) -> None:
    run = commands.add_parser("run", help="benchmark frameworks x models x tasks x devices",
                              description="Run benchmark cases, each in a fresh process; print a comparison table.")
    _add_selection(run)
    _add_measuring(run)
    _add_placement(run)
    _add_output(run)
    run.add_argument("-v", "--verbose", action="store_true", help="show the workers' own output")
    run.set_defaults(func=cmd_run)


def _add_selection(run: argparse.ArgumentParser) -> None:
    pick = run.add_argument_group("what to run")
    pick.add_argument("--all", action="store_true", help="every installed framework, model, task with data, device")
    pick.add_argument("-f", "--framework", action="append", default=[], metavar="NAME", help="repeatable")
    pick.add_argument("-m", "--model", action="append", default=[], metavar="NAME", help="repeatable")
    pick.add_argument("-t", "--task", action="append", default=[], metavar="NAME", help="repeatable")
    pick.add_argument("--variant", action="append", default=[], metavar="NAME",
                      help="repeatable; 'default' for each framework's first (its tutorials' way), 'tuned' for "
                           "its performance guides' way, 'all' for every variant (default: 'default')")
    pick.add_argument("--device", default="all", metavar="cpu|gpu|all", help="default: every available device")
    pick.add_argument("--batch-size", action="append", type=batch_size_arg, metavar="N|auto",
                      help="training batch size, repeatable (default the profile's: 128, auto for --profile gpu); "
                           "auto: double from 128 until training samples/s rises by less than 5%%, record the "
                           "curve, measure at the knee")


def _add_measuring(run: argparse.ArgumentParser) -> None:
    from dlbench.machine.environment import ENVIRONMENTS, default_threads

    cores = os.cpu_count() or 1
    how = run.add_argument_group("how to measure")
    how.add_argument("--profile", default="quick", choices=["smoke", "quick", "gpu", "full"],
                     help="budget: smoke (seconds), quick (default, ~10 min for --all), gpu (quick's steps at the "
                          "knee batch, short timing), full (tutorial epochs)")
    how.add_argument("--threads", type=int_in("--threads", 1, cores),
                     help=f"thread budget given to every framework (default {default_threads(cores)}: every core "
                          f"but one, left to the harness and the OS; {cores} to use all; {cores} with "
                          "--environment user)")
    how.add_argument("--environment", choices=list(ENVIRONMENTS), default="dlbench",
                     help="the workers' environment: " + "; ".join(f"{name}: {what}" for name, what in
                                                                   ENVIRONMENTS.items()) + " (default dlbench)")
    how.add_argument("--repeat", type=int_in("--repeat", 1, 1000), default=1,
                     help="run each case N times in fresh processes, interleaved A B B A")
    how.add_argument("--steps", type=int_in("--steps", 2, 10_000_000), help="training steps (overrides the profile)")
    how.add_argument("--infer-batch-size", type=int_in("--infer-batch-size", 1, 65536),
                     help="batch of the Offline inference scenario (default 1024)")
    how.add_argument("--target", type=float_in("--target", 0.0, 1.0), help="time-to-accuracy target (0..1)")
    how.add_argument("--augment", action="store_true", help="augment training images (rotation, shift, shear)")
    how.add_argument("--seed", type=int_in("--seed", 0, 2**31 - 1), default=0)
    how.add_argument("--case-timeout", type=float_in("--case-timeout", 1, 7 * 86400),
                     help="seconds before a case is killed (default from the profile)")
    sampling.add_arguments(how)
    loadgen.add_arguments(how)


def _add_placement(run: argparse.ArgumentParser) -> None:
    where = run.add_argument_group("where cases run")
    where.add_argument("--launch", choices=["fork", "spawn"], default=None,
                       help="how each case's fresh process starts: fork (default on Linux; from a server per "
                            "framework that imported it once) or spawn (a new interpreter; docs/launch.md)")
    where.add_argument("--executor", default="local", choices=["local", "ray"],
                       help="local: one case at a time here (default); ray: over a Ray cluster (docs/cluster.md)")
    where.add_argument("--ray-address", metavar="ADDRESS",
                       help="the Ray cluster to use (default: $RAY_ADDRESS, else a private one on this machine)")
    where.add_argument("--node-type", metavar="RESOURCE",
                       help="run every case on nodes that have this custom Ray resource")
    where.add_argument("--pack", action="store_true",
                       help="let cases share a node while their thread budgets fit its CPUs (default: a node each)")
    where.add_argument("--retries", type=int_in("--retries", 0, 10), default=1,
                       help="run a crashed case again, on another node, up to N times (ray; default 1)")


def _add_output(run: argparse.ArgumentParser) -> None:
    out = run.add_argument_group("where results go")
    out.add_argument("--out", metavar="DIR", help="default reports/runs/<timestamp>/")
    out.add_argument("--resume", metavar="DIR", help="continue an interrupted run in DIR")
    out.add_argument("--data-dir", metavar="DIR", help="look here first for data sets")
    out.add_argument("--report", action="store_true", help="also write an HTML/markdown report into OUT/report")
    out.add_argument("--format", default="github", help="tabulate format of the final table (default github)")


def cmd_run(args: argparse.Namespace) -> int:
    from dlbench.running import runner
    from dlbench.running.plan import Selection, make_plan
    from dlbench.plugins.registry import load_registry

    if args.resume:
        args, run_dir, finished, run_id = _resume(args)
    else:
        run_dir, finished, run_id = _new_run_dir(args), frozenset(), None
    _check_run_arguments(args)
    _resolve_environment(args)
    from dlbench.measure.profiles import get_profile

    selection = Selection(args.framework, args.model, args.task, args.variant, args.device,
                          args.batch_size or [get_profile(args.profile).batch_size], args.data_dir,
                          profile=args.profile)
    registry = load_registry()
    plan = make_plan(registry, selection)
    options = _run_options(args)
    say = runner.stream
    for note in plan.notes:
        say(f"note: {note}")
    say(f"{len(plan.cases)} cases x {args.repeat} repeat(s), {len(plan.skipped)} skipped for missing data; "
        f"profile {args.profile}, {args.threads} thread(s), {args.environment}'s environment; "
        f"results in {run_dir.results}")
    with run_dir.lock():
        manifest = {"argv": _saved_options(args), "out": str(run_dir), "status": "running",
                    "started": datetime.now().isoformat(timespec="seconds"), "dlbench": __version__}
        run_dir.write_manifest(manifest)
        with _interruptible():
            state = runner.run_plan(plan, registry, options, run_dir, say, finished, run_id)
        manifest.update(run_id=state.run_id, status="interrupted" if state.interrupted else "complete",
                        ended=datetime.now().isoformat(timespec="seconds"), cases_run=state.done,
                        time_s=state.time_s)
        run_dir.write_manifest(manifest)
    records = run_dir.records()
    from dlbench.report.table import comparison_table

    print(comparison_table(records, fmt=args.format))
    if args.report:
        from dlbench.report.folder import write_report

        say(f"report: {write_report(records, run_dir.report)}")
    if state.interrupted:
        say(f"run interrupted; continue it with: dlbench run --resume {run_dir}")
        return EXIT_INTERRUPTED
    failed = [r for r in records if r["run_id"] == state.run_id and r["status"] in ("failed", "crashed", "timeout")
              and not r.get("retried")]
    return EXIT_CASE_FAILED if failed else 0


def _run_options(args: argparse.Namespace) -> "RunOptions":
    from dlbench.running.options import RunOptions

    options = RunOptions(profile=args.profile, threads=args.threads, environment=args.environment, seed=args.seed,
                         repeat=args.repeat, steps=args.steps, infer_batch_size=args.infer_batch_size,
                         target=args.target, augment=args.augment, data_dir=args.data_dir,
                         case_timeout=args.case_timeout, verbose=args.verbose, launch=getattr(args, "launch", None))
    options.sampling = sampling.values(args)
    _executor_options(args, options)
    loadgen.apply(args, options)  # --inference loadgen: LoadGen's absence is one line, before any case
    return options


@contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM, and SIGINT even where the shell started us with it ignored (a background job), interrupt the run."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt), signal.signal(signal.SIGINT, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


def batch_size_arg(text: str) -> Any:
    """--batch-size: a whole number from 1 to 65536, or "auto" (measure.batch_sweep)."""
    return "auto" if text.strip().lower() == "auto" else int_in("--batch-size", 1, 65536)(text)


def _new_run_dir(args: argparse.Namespace) -> "RunDir":
    """The folder of a new run: ``--out`` or a timestamped one; never one that already holds results."""
    from dlbench.running.rundir import RunDir

    if not (args.all or args.framework or args.model or args.task):
        raise UsageError("say what to run: --all, or choose with -f/-m/-t (see dlbench list)")
    run_dir = RunDir(Path(args.out) if args.out else Path("reports/runs") / datetime.now().strftime("%Y%m%d-%H%M%S"))
    if run_dir.has_results():
        raise UsageError(f"--out {run_dir}: the folder already holds the results of a run; continue it with "
                         f"--resume {run_dir}, or choose a new folder")
    return run_dir


def _check_run_arguments(args: argparse.Namespace) -> None:
    """Checks that need more than one argument or the file system (argparse checked the rest)."""
    from tabulate import tabulate_formats

    if args.format not in tabulate_formats:
        raise UsageError(f"--format {args.format!r} is not a tabulate format; choose from {', '.join(tabulate_formats)}")
    if args.data_dir and not Path(args.data_dir).is_dir():
        raise UsageError(f"--data-dir {args.data_dir}: no such folder")


def _resolve_environment(args: argparse.Namespace) -> None:
    """--environment (a run resumed from before it: dlbench's) and the thread budget it implies by default."""
    from dlbench.machine.environment import default_threads

    args.environment = getattr(args, "environment", None) or "dlbench"
    if args.threads is None:
        args.threads = default_threads(os.cpu_count() or 1, args.environment)


def _executor_options(args: argparse.Namespace, options: Any) -> None:
    """--executor and its flags onto ``options``; Ray's absence is one line here, before the run folder exists."""
    executor = getattr(args, "executor", "local") or "local"  # a resumed run from before executors: local
    if executor != "ray":
        given = [flag for flag, value in (("--ray-address", getattr(args, "ray_address", None)),
                                          ("--node-type", getattr(args, "node_type", None)),
                                          ("--pack", getattr(args, "pack", False))) if value]
        if given:
            raise UsageError(f"{', '.join(given)} only apply to --executor ray; add --executor ray or drop them")
        return
    from dlbench.running.executors.raycluster import check_reachable, import_ray

    import_ray()
    check_reachable(args.ray_address)
    options.executor, options.ray_address = executor, args.ray_address
    options.node_type, options.pack, options.retries = args.node_type, args.pack, args.retries


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _saved_options(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if k not in ("func", "resume", "command")}


def _resume(args: argparse.Namespace) -> tuple[argparse.Namespace, "RunDir", frozenset, Optional[str]]:
    """The options of the interrupted run in ``args.resume``, and the (case, repeat) pairs it finished."""
    from dlbench.running.rundir import RunDir

    run_dir = RunDir(Path(args.resume))
    manifest = run_dir.read_manifest()
    resumed = argparse.Namespace(**{**vars(args), **manifest["argv"], "resume": str(run_dir)})
    finished, run_id = run_dir.finished()
    return resumed, run_dir, finished, manifest.get("run_id") or run_id
