"""The ``dlbench`` command: the parser of every subcommand, and one exit code per outcome.

User mistakes end with one line on stderr and exit code 2, never a traceback; failed cases with 1; an
interrupted run with 130.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from dlbench.cli import data, doctor, listing, report, run
from dlbench.cli.args import EXIT_INTERRUPTED, EXIT_USAGE, Parser
from dlbench.errors import UsageError
from dlbench.version import __version__


def build_parser() -> Parser:
    parser = Parser(prog="dlbench", description="Fair, reproducible benchmarks of deep-learning frameworks.")
    parser.add_argument("--version", action="version", version=f"dlbench {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    for add in (run.add_command, listing.add_command, doctor.add_command, report.add_commands, data.add_commands):
        add(commands)
    return parser


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

