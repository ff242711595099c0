"""The ``dlbench run`` options of ``--inference loadgen``, and their checks before any case runs."""

from __future__ import annotations

import argparse
from typing import Any

from dlbench.errors import UsageError
from dlbench.loadgen.batching import SERVE_MODES
from dlbench.loadgen.settings import SCENARIOS

MAX_BATCH_LIMIT = 65_536
MAX_TIMEOUT_US = 1_000_000


def positive_ms(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--latency-bound-ms must be a number of milliseconds, got {text!r}") from None
    if not 0.01 <= value <= 3_600_000:  # also rejects NaN
        raise argparse.ArgumentTypeError(f"--latency-bound-ms must be between 0.01 and 3600000, got {text}")
    return value


def _numbers(text: str, flag: str, low: float, high: float, integer: bool) -> list[Any]:
    """``8,32,128`` -> [8, 32, 128]; anything else an ``argparse`` error naming the flag and the range."""
    kind = "whole numbers" if integer else "numbers"
    try:
        values = [int(part) if integer else float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{flag} takes {kind} separated by commas, got {text!r}") from None
    if not values or not all(low <= v <= high for v in values):  # also rejects NaN
        raise argparse.ArgumentTypeError(f"{flag} values must be between {low:g} and {high:g}, got {text}")
    return values


def max_batches(text: str) -> list[int]:
    return _numbers(text, "--max-batch", 1, MAX_BATCH_LIMIT, integer=True)


def timeouts_us(text: str) -> list[float]:
    return _numbers(text, "--batch-timeout-us", 0, MAX_TIMEOUT_US, integer=False)


def add_arguments(group: Any) -> None:
    """``--inference``, ``--scenario``, ``--latency-bound-ms`` and the Server's serving options in the run
    command's "how to measure" group."""
    group.add_argument("--inference", default="own", choices=["own", "loadgen"],
                       help="own: dlbench times Offline and SingleStream (default); loadgen: also MLPerf's LoadGen "
                            "scenarios (docs/loadgen.md)")
    group.add_argument("--scenario", dest="scenarios", action="append", choices=list(SCENARIOS), metavar="NAME",
                       help=f"LoadGen scenario, repeatable: {'|'.join(SCENARIOS)} (default: all four)")
    group.add_argument("--latency-bound-ms", type=positive_ms, metavar="MS",
                       help="LoadGen Server p99 latency bound (default per model from the zoo; 10 ms, MLPerf's)")
    group.add_argument("--serve", choices=list(SERVE_MODES),
                       help="LoadGen Server: single answers one query at a time (default); batched gathers the "
                            "queued queries into one predict call, searching a grid of max batch x timeout")
    group.add_argument("--max-batch", type=max_batches, metavar="N[,N...]",
                       help="--serve batched: largest batch a predict call gathers; several are searched "
                            "(default 8,32,128)")
    group.add_argument("--batch-timeout-us", type=timeouts_us, metavar="T[,T...]",
                       help="--serve batched: how long to wait for more queries after the first, in µs; several "
                            "are searched (default 0 and a tenth of the latency bound)")


def apply(args: argparse.Namespace, options: Any) -> None:
    """Copy the LoadGen options onto ``options``; LoadGen missing or a stray flag is one line (exit 2)."""
    inference = getattr(args, "inference", "own") or "own"  # a resumed run from before --inference: own
    scenarios = getattr(args, "scenarios", None) or []
    bound = getattr(args, "latency_bound_ms", None)
    serve = getattr(args, "serve", None)
    batches, timeouts = getattr(args, "max_batch", None) or [], getattr(args, "batch_timeout_us", None) or []
    if inference != "loadgen":
        _only_with([("--scenario", scenarios), ("--latency-bound-ms", bound), ("--serve", serve),
                    ("--max-batch", batches), ("--batch-timeout-us", timeouts)], "--inference loadgen")
        return
    if serve != "batched":
        _only_with([("--max-batch", batches), ("--batch-timeout-us", timeouts)], "--serve batched")
    from dlbench.loadgen import require_loadgen

    require_loadgen()
    options.inference = "loadgen"
    options.scenarios = tuple(s for s in SCENARIOS if s in scenarios)
    options.latency_bound_ms = bound
    options.serve = serve or "single"
    options.max_batch = tuple(sorted(set(batches)))
    options.batch_timeout_us = tuple(sorted(set(timeouts)))


def _only_with(flags: list[tuple[str, Any]], needed: str) -> None:
    """One line when any of ``flags`` was given without the option they belong to."""
    given = [flag for flag, value in flags if value]
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        raise UsageError(f"{' and '.join(given)} {verb} only to {needed}; add {needed} "
                         f"or drop {'it' if len(given) == 1 else 'them'}")
