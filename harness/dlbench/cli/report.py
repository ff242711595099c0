"""The ``table``, ``report``, ``compare``, ``export`` and ``publish`` commands of ``dlbench``.

Handlers take the parsed arguments and return an exit code; a user mistake (missing file, malformed
results, bad option) raises UsageError with one line naming the input and the fix.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any, Sequence

from dlbench.errors import UsageError
from dlbench.results import RESULTS, ResultsError, load_records, results_file


def add_commands(subparsers: Any) -> None:
    """Add the publishing commands to the ``dlbench`` argparse subparsers."""
    _add_table(subparsers)
    _add_report(subparsers)
    _add_compare(subparsers)
    _add_export(subparsers)
    _add_publish(subparsers)


def _add_table(subparsers: Any) -> None:
    table = subparsers.add_parser("table", help="print the comparison table of results files",
                                  description="Print one row per model x task with every framework's accuracy, "
                                              "throughput, latency and relative training speed.")
    table.add_argument("results", nargs="+", type=Path, metavar="RESULTS.jsonl")
    table.add_argument("--format", "-f", dest="fmt", default="github", metavar="FMT",
                       help="any tabulate format: github (default), pipe, simple, grid, latex, html, ...")
    table.set_defaults(func=table_command)


def _add_report(subparsers: Any) -> None:
    report = subparsers.add_parser("report", help="write a static HTML + markdown report folder",
                                   description="Write index.html (charts inline, opens from disk), report.md, "
                                               "results.csv and results.jsonl into one folder.")
    report.add_argument("results", nargs="+", type=Path, metavar="RESULTS.jsonl")
    report.add_argument("-o", "--output", type=Path, default=None, metavar="DIR",
                        help="the report folder (default: reports/<run id of the first record>)")
    report.set_defaults(func=report_command)


def _add_compare(subparsers: Any) -> None:
    from dlbench.report.compare import DEFAULT_METRICS, METRICS

    compare = subparsers.add_parser("compare", help="compare two runs case by case, with significance",
                                    description="Per case in both files: the change of each metric and a verdict "
                                                "(faster/slower/same) from a test over repeats or blocks and the "
                                                "threshold. Exit code 1 when a case is significantly slower.")
    compare.add_argument("base", type=Path, metavar="BASE.jsonl")
    compare.add_argument("new", type=Path, metavar="NEW.jsonl")
    compare.add_argument("--threshold", default="5%", metavar="PCT",
                         help="smallest change that counts, in percent (default 5%%)")
    compare.add_argument("--metric", dest="metrics", action="extend", nargs="+", metavar="METRIC",
                         help=f"metrics to compare (default {' '.join(DEFAULT_METRICS)}); "
                              f"choose from {', '.join(METRICS)}")
    compare.add_argument("--format", "-f", dest="fmt", default="simple", metavar="FMT",
                         help="tabulate format of the table (default simple)")
    compare.add_argument("--across-machines", action="store_true",
                         help="give verdicts even where the two sides ran on different machines, thread budgets or "
                              "measurement environments (refused by default; the difference is printed either way)")
    compare.set_defaults(func=compare_command)


def _add_export(subparsers: Any) -> None:
    export = subparsers.add_parser("export", help="export results for other tools (pytest-benchmark JSON)",
                                   description="Write results in another tool's format; pytest-benchmark: a saved "
                                               "run that `pytest-benchmark compare FILE.json` reads.")
    export.add_argument("results", nargs="+", type=Path, metavar="RESULTS.jsonl")
    export.add_argument("--format", "-f", dest="fmt", default="pytest-benchmark", metavar="FMT",
                        help="pytest-benchmark (the only one so far)")
    export.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.json")
    export.set_defaults(func=export_command)


def _add_publish(subparsers: Any) -> None:
    publish = subparsers.add_parser("publish", help="build a static site of many runs: histories, regressions found",
                                    description="Build a static site (opens from disk, no script, no network) from "
                                                "many runs: an index of runs, the latest comparison table, one page "
                                                "per case and machine with its history against date and framework "
                                                "version, and the regressions and improvements a step detector "
                                                "finds. Re-running only re-renders pages whose inputs changed.")
    publish.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                         help="run folders (e.g. reports/runs/*) or results.jsonl files")
    publish.add_argument("-o", "--output", type=Path, required=True, metavar="SITE",
                         help="the site folder (new, empty, or built by an earlier publish)")
    publish.add_argument("--threshold", default="5%", metavar="PCT",
                         help="smallest step in a history that counts as a change, in percent (default 5%%)")
    publish.add_argument("--keep-hostnames", action="store_true",
                         help="keep host names, user names and paths (left out of published pages by default)")
    publish.add_argument("--across-machines", action="store_true",
                         help="also write a page per case showing it on every machine side by side")
    publish.set_defaults(func=publish_command)


def read_results(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Records of the given files (a folder means its results.jsonl); UsageError naming the bad input."""
    for path in paths:
        target = results_file(path)
        if not target.is_file():
            raise UsageError(f"{target}: no such results file; give the results.jsonl that `dlbench run` wrote")
    try:
        records = load_records(paths)
    except ResultsError as exc:
        raise UsageError(f"{exc}; fix or delete that line (one JSON record per line, docs/results-schema.md)") \
            from None
    if not records:
        raise UsageError(f"{', '.join(map(str, paths))}: no result records in it; run `dlbench run` first")
    return records


def _check_format(fmt: str) -> None:
    from tabulate import tabulate_formats

    if fmt not in tabulate_formats:
        raise UsageError(f"--format {fmt}: unknown table format; choose from {', '.join(sorted(tabulate_formats))}")


def table_command(args: argparse.Namespace) -> int:
    from dlbench.report.table import comparison_table

    _check_format(args.fmt)
    print(comparison_table(read_results(args.results), fmt=args.fmt))
    return 0


def report_command(args: argparse.Namespace) -> int:
    from dlbench.report.folder import write_report

    records = read_results(args.results)
    out = args.output or Path("reports") / re.sub(r"[^A-Za-z0-9_.-]+", "_", str(records[0]["run_id"]))
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {out}: is a file; give a folder for the report")
    target = results_file(out).resolve() if out.is_dir() else (out / RESULTS).resolve()
    inputs = [results_file(p).resolve() for p in args.results]
    if target in inputs and len(inputs) > 1:
        raise UsageError(f"-o {out}: would overwrite the input {target}; choose another report folder")
    write_report(records, out, sources=[str(p) for p in args.results])
    print(f"report written to {out / 'index.html'} (and report.md, results.csv, results.jsonl)")
    return 0


def parse_threshold(text: str) -> float:
    """'5%' or '5' -> 0.05; UsageError for anything else."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*%?\s*", str(text))
    if not match or float(match.group(1)) >= 1000:
        raise UsageError(f"--threshold {text}: not a percentage; write e.g. --threshold 5%")
    return float(match.group(1)) / 100


def compare_command(args: argparse.Namespace) -> int:
    from dlbench.report.compare import DEFAULT_METRICS, METRICS, compare_records, format_comparison

    threshold = parse_threshold(args.threshold)
    metrics = list(dict.fromkeys(args.metrics or DEFAULT_METRICS))
    for metric in metrics:
        if metric not in METRICS:
            raise UsageError(f"--metric {metric}: unknown metric; choose from {', '.join(METRICS)}")
    _check_format(args.fmt)
    base, new = read_results([args.base]), read_results([args.new])
    result = compare_records(base, new, metrics, threshold, across_machines=args.across_machines)
    if result.incomparable and not result.changes and not result.not_compared:
        from dlbench.report.compare import differences_line

        raise UsageError(f"{args.base} and {args.new}: {differences_line(result)}")
    print(format_comparison(result, args.fmt, base_name=str(args.base), new_name=str(args.new)))
    return 1 if result.regressions or result.newly_broken else 0


def export_command(args: argparse.Namespace) -> int:
    from dlbench.report.export import FORMATS, to_pytest_benchmark

    if args.fmt not in FORMATS:
        raise UsageError(f"--format {args.fmt}: unknown export format; choose from {', '.join(FORMATS)}")
    if args.output.is_dir():
        raise UsageError(f"-o {args.output}: is a folder; give the JSON file to write")
    document = to_pytest_benchmark(read_results(args.results))
    if not document["benchmarks"]:
        raise UsageError(f"{', '.join(map(str, args.results))}: no case trained ok; nothing to export")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=4, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {len(document['benchmarks'])} benchmarks to {args.output}; "
          f"view with: pytest-benchmark compare {args.output}")
    return 0


def publish_command(args: argparse.Namespace) -> int:
    from dlbench.publish.site import publish

    threshold = parse_threshold(args.threshold)
    result = publish(args.runs, args.output, threshold, keep_hostnames=args.keep_hostnames,
                     across=args.across_machines)
    print(result.summary())
    return 0
