"""The ``dlbench run`` options of ``--inference loadgen``, and their checks before any case runs."""

from __future__ import annotations

import argparse
from typing import Any

from dlbench.errors import UsageError
from dlbench.loadgen.settings import SCENARIOS


def positive_ms(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--latency-bound-ms must be a number of milliseconds, got {text!r}") from None
    if not 0.01 <= value <= 3_600_000:  # also rejects NaN
        raise argparse.ArgumentTypeError(f"--latency-bound-ms must be between 0.01 and 3600000, got {text}")
    return value


def add_arguments(group: Any) -> None:
    """``--inference``, ``--scenario``, ``--latency-bound-ms`` in the run command's "how to measure" group."""
    group.add_argument("--inference", default="own", choices=["own", "loadgen"],
                       help="own: dlbench times Offline and SingleStream (default); loadgen: also MLPerf's LoadGen "
                            "scenarios (docs/loadgen.md)")
    group.add_argument("--scenario", dest="scenarios", action="append", choices=list(SCENARIOS), metavar="NAME",
                       help=f"LoadGen scenario, repeatable: {'|'.join(SCENARIOS)} (default: all four)")
    group.add_argument("--latency-bound-ms", type=positive_ms, metavar="MS",
                       help="LoadGen Server p99 latency bound (default per model from the zoo; 10 ms, MLPerf's)")


def apply(args: argparse.Namespace, options: Any) -> None:
    """Copy the LoadGen options onto ``options``; LoadGen missing or a stray flag is one line (exit 2)."""
    inference = getattr(args, "inference", "own") or "own"  # a resumed run from before --inference: own
    scenarios = getattr(args, "scenarios", None) or []
    bound = getattr(args, "latency_bound_ms", None)
    if inference != "loadgen":
        given = [flag for flag, value in (("--scenario", scenarios), ("--latency-bound-ms", bound)) if value]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise UsageError(f"{' and '.join(given)} {verb} only to --inference loadgen; add --inference loadgen "
                             f"or drop {'it' if len(given) == 1 else 'them'}")
        return
    from dlbench.loadgen import require_loadgen

    require_loadgen()
    options.inference = "loadgen"
    options.scenarios = tuple(s for s in SCENARIOS if s in scenarios)
    options.latency_bound_ms = bound
