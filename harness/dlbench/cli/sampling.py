"""``dlbench run`` options of adaptive sampling and the estimator, overriding the profile's (profiles.py).

They travel to the worker in the case spec (``estimator``, ``ci_target``, ``max_timing``) and are applied
by ``profiles.with_overrides``; every record says which were used (``metrics.estimator``, ``ci_target``).
"""

from __future__ import annotations

import argparse
from typing import Any


def add_arguments(group: Any) -> None:
    from dlbench.cli.args import float_in
    from dlbench.stats.estimators import ESTIMATORS

    group.add_argument("--estimator", choices=ESTIMATORS,
                       help="summary of the timed blocks (default from the profile; docs/noise.md says why)")
    group.add_argument("--ci-target", type=_percent, metavar="PCT",
                       help="adaptive sampling: time blocks until the estimator's 95%% CI half-width is under "
                            "PCT (default 3%%; 0 turns it off)")
    group.add_argument("--max-timing", type=float_in("--max-timing", 0, 86400), metavar="S",
                       help="adaptive sampling's cap in timed seconds, for training and for Offline each "
                            "(default from the profile: quick 1.5 and 0.75)")


def _percent(text: str) -> float:
    value = text.strip().rstrip("%")
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--ci-target must be a percentage such as 3%, got {text!r}") from None
    if not 0 <= number < 100:
        raise argparse.ArgumentTypeError(f"--ci-target must be between 0% and 100%, got {text!r}")
    return number / 100


def values(args: argparse.Namespace) -> dict[str, Any]:
    """The case-spec entries for these options (only those given)."""
    found = {"estimator": getattr(args, "estimator", None), "ci_target": getattr(args, "ci_target", None),
             "max_timing": getattr(args, "max_timing", None)}
    return {key: value for key, value in found.items() if value is not None}
