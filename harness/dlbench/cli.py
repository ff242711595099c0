"""The ``dlbench`` command. User mistakes end with one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from dlbench import __version__
from dlbench.errors import UsageError

if TYPE_CHECKING:
    from dlbench.rundir import RunDir

EXIT_USAGE, EXIT_CASE_FAILED, EXIT_INTERRUPTED = 2, 1, 130


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line) instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")


def int_in(name: str, low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be between {low} and {high}, got {value}")
        return value
    return parse


def float_in(name: str, low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not low <= value <= high:  # also rejects NaN
            raise argparse.ArgumentTypeError(f"{name} must be between {low:g} and {high:g}, got {text}")
        return value
    return parse


def build_parser() -> Parser:
    parser = Parser(prog="dlbench", description="Fair, reproducible benchmarks of deep-learning frameworks.")
    parser.add_argument("--version", action="version", version=f"dlbench {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    _add_run(commands)
    _add_list(commands)
    from dlbench.doctor import add_command as add_doctor_command

    add_doctor_command(commands)
    from dlbench.data.commands import add_commands as add_data_commands
    from dlbench.report.commands import add_commands as add_report_commands

    add_report_commands(commands)
    add_data_commands(commands)
    return parser


def _add_run(commands: Any) -> None:
    from dlbench.machine import default_threads

    cores = os.cpu_count() or 1
    run = commands.add_parser("run", help="benchmark frameworks x models x tasks x devices",
                              description="Run benchmark cases, each in a fresh process; print a comparison table.")
    pick = run.add_argument_group("what to run")
    pick.add_argument("--all", action="store_true", help="every installed framework, model, task with data, device")
    pick.add_argument("-f", "--framework", action="append", default=[], metavar="NAME", help="repeatable")
    pick.add_argument("-m", "--model", action="append", default=[], metavar="NAME", help="repeatable")
    pick.add_argument("-t", "--task", action="append", default=[], metavar="NAME", help="repeatable")
    pick.add_argument("--variant", action="append", default=[], metavar="NAME",
                      help="repeatable; 'default' for each framework's first (its tutorials' way), 'tuned' for "
                           "its performance guides' way, 'all' for every variant (default: 'default')")
    pick.add_argument("--device", default="all", metavar="cpu|gpu|all", help="default: every available device")
    pick.add_argument("--batch-size", action="append", type=int_in("--batch-size", 1, 65536), metavar="N",
                      help="training batch size, repeatable (default 128)")
    how = run.add_argument_group("how to measure")
    how.add_argument("--profile", default="quick", choices=["smoke", "quick", "full"],
                     help="budget: smoke (seconds), quick (default, ~10 min for --all), full (tutorial epochs)")
    how.add_argument("--threads", type=int_in("--threads", 1, cores), default=default_threads(cores),
                     help=f"thread budget given to every framework (default {default_threads(cores)}: every core "
                          f"but one, left to the harness and the OS; {cores} to use all)")
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
    from dlbench.sampling_cli import add_arguments as add_sampling_arguments

    add_sampling_arguments(how)
    from dlbench.loadgen.options import add_arguments as add_loadgen_arguments

    add_loadgen_arguments(how)
    where = run.add_argument_group("where cases run")
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
    out = run.add_argument_group("where results go")
    out.add_argument("--out", metavar="DIR", help="default reports/runs/<timestamp>/")
    out.add_argument("--resume", metavar="DIR", help="continue an interrupted run in DIR")
    out.add_argument("--data-dir", metavar="DIR", help="look here first for data sets")
    out.add_argument("--report", action="store_true", help="also write an HTML/markdown report into OUT/report")
    out.add_argument("--format", default="github", help="tabulate format of the final table (default github)")
    run.add_argument("-v", "--verbose", action="store_true", help="show the workers' own output")
    run.set_defaults(func=cmd_run)


def _add_list(commands: Any) -> None:
    listing = commands.add_parser("list", help="show frameworks, models and tasks",
                                  description="Show installed framework plugins, the model zoo and the tasks.")
    listing.add_argument("what", nargs="?", default="all", choices=["all", "frameworks", "devices", "models", "tasks"])
    listing.add_argument("--data-dir", metavar="DIR")
    listing.set_defaults(func=cmd_list)


def cmd_list(args: argparse.Namespace) -> int:
    from dlbench.listing import devices_table, frameworks_table, models_table, tasks_table

    sections = {"frameworks": frameworks_table, "devices": devices_table, "models": models_table,
                "tasks": lambda: tasks_table(args.data_dir)}
    chosen = list(sections) if args.what == "all" else [args.what]
    print("\n\n".join(sections[name]() for name in chosen))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from dlbench import runner
    from dlbench.plan import Selection, make_plan
    from dlbench.plugins import load_registry

    if args.resume:
        args, run_dir, finished, run_id = _resume(args)
    else:
        run_dir, finished, run_id = _new_run_dir(args), frozenset(), None
    _check_run_arguments(args)
    selection = Selection(args.framework, args.model, args.task, args.variant, args.device,
                          args.batch_size or [128], args.data_dir, profile=args.profile)
    registry = load_registry()
    plan = make_plan(registry, selection)
    options = runner.RunOptions(profile=args.profile, threads=args.threads, seed=args.seed,
                                repeat=args.repeat, steps=args.steps, infer_batch_size=args.infer_batch_size,
                                target=args.target, augment=args.augment, data_dir=args.data_dir,
                                case_timeout=args.case_timeout, verbose=args.verbose)
    from dlbench.sampling_cli import values as sampling_values

    options.sampling = sampling_values(args)
    _executor_options(args, options)
    from dlbench.loadgen.options import apply as apply_loadgen_options

    apply_loadgen_options(args, options)  # --inference loadgen: LoadGen's absence is one line, before any case
    say = runner.stream
    for note in plan.notes:
        say(f"note: {note}")
    say(f"{len(plan.cases)} cases x {args.repeat} repeat(s), {len(plan.skipped)} skipped for missing data; "
        f"profile {args.profile}, {args.threads} thread(s); results in {run_dir.results}")
    with run_dir.lock():
        manifest = {"argv": _saved_options(args), "out": str(run_dir), "status": "running",
                    "started": datetime.now().isoformat(timespec="seconds"), "dlbench": __version__}
        run_dir.write_manifest(manifest)
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            state = runner.run_plan(plan, registry, options, run_dir, say, finished, run_id)
        finally:
            signal.signal(signal.SIGTERM, previous)
        manifest.update(run_id=state.run_id, status="interrupted" if state.interrupted else "complete",
                        ended=datetime.now().isoformat(timespec="seconds"), cases_run=state.done)
        run_dir.write_manifest(manifest)
    records = run_dir.records()
    from dlbench.report.table import comparison_table

    print(comparison_table(records, fmt=args.format))
    if args.report:
        from dlbench.report import write_report

        say(f"report: {write_report(records, run_dir.report)}")
    if state.interrupted:
        say(f"run interrupted; continue it with: dlbench run --resume {run_dir}")
        return EXIT_INTERRUPTED
    failed = [r for r in records if r["run_id"] == state.run_id and r["status"] in ("failed", "crashed", "timeout")
              and not r.get("retried")]
    return EXIT_CASE_FAILED if failed else 0


def _new_run_dir(args: argparse.Namespace) -> "RunDir":
    """The folder of a new run: ``--out`` or a timestamped one; never one that already holds results."""
    from dlbench.rundir import RunDir

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
    from dlbench.executors.raycluster import check_reachable, import_ray

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
    from dlbench.rundir import RunDir

    run_dir = RunDir(Path(args.resume))
    manifest = run_dir.read_manifest()
    resumed = argparse.Namespace(**{**vars(args), **manifest["argv"], "resume": str(run_dir)})
    finished, run_id = run_dir.finished()
    return resumed, run_dir, finished, manifest.get("run_id") or run_id


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"dlbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("dlbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
