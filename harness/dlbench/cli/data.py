"""``dlbench data status`` and ``dlbench data fetch``: which data sets are here, and a verified download."""

from __future__ import annotations

import argparse
import sys

from dlbench.errors import DataError
from dlbench.errors import UsageError


def add_commands(subparsers) -> None:
    """Add ``data fetch`` and ``data status`` to the main parser's subparsers."""
    data = subparsers.add_parser("data", help="find and download the data sets",
                                 description="Find and download the tasks' data sets.")
    commands = data.add_subparsers(dest="data_command", metavar="COMMAND", required=True)

    fetch = commands.add_parser(
        "fetch", help="download a data set into the dlbench cache, verified",
        description="Download a data set from its public location (or a mirror), verify its checksum and put "
                    "it in the dlbench cache ($DLBENCH_CACHE, default ~/.cache/dlbench) or --data-dir.")
    fetch.add_argument("name", metavar="NAME", help="mnist, imdb, fashion_mnist or cifar10")
    fetch.add_argument("--mirror", metavar="URL",
                       help="base URL that replaces the canonical one (default: $DLBENCH_MIRROR)")
    fetch.add_argument("--data-dir", metavar="DIR", help="put the files here instead of the cache")
    fetch.add_argument("--sha256", metavar="[FILE=]HEX", action="append",
                       help="expected SHA-256, overriding or supplying the shipped one (repeatable)")
    fetch.add_argument("--force", action="store_true", help="download even if the data is already found")
    fetch.set_defaults(func=run_fetch)

    status = commands.add_parser("status", help="which tasks' data is here, where, and how to get the rest")
    status.add_argument("--data-dir", metavar="DIR", help="look here first")
    status.set_defaults(func=run_status)


def run_fetch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dlbench.data import TASKS, task_status
    from dlbench.data.remote import REMOTES, fetch, parse_sha256_overrides

    if args.name not in REMOTES:
        hint = (f"{args.name} needs no download" if args.name in TASKS else f"unknown data set {args.name!r}")
        raise UsageError(f"dlbench data fetch {args.name}: {hint}; fetchable: {', '.join(REMOTES)}")
    try:
        overrides = parse_sha256_overrides(args.sha256, REMOTES[args.name])
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.mirror and not args.mirror.lower().startswith(("http://", "https://", "file:")):
        raise UsageError(f"--mirror {args.mirror}: expected an http(s):// or file: URL")
    if not args.force:
        found = task_status(args.name, args.data_dir)
        if found.found:
            print(f"{args.name}: already present at {found.where}; nothing to do (--force downloads anyway)")
            return 0
    dest = Path(args.data_dir).expanduser() if args.data_dir else None
    try:
        folder = fetch(args.name, dest=dest, mirror=args.mirror, sha256=overrides,
                       log=lambda line: print(line, file=sys.stderr))
    except DataError as exc:
        print(f"dlbench: {exc}", file=sys.stderr)
        return 1
    print(f"{args.name}: ready in {folder}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from dlbench.data import TASKS, task_status

    for name in TASKS:
        status = task_status(name, args.data_dir)
        print(f"{name:18s} {'found' if status.found else 'missing':8s} "
              f"{status.where if status.found else status.hint}")
    return 0
