"""The `akri` command line: one console script, one module per subcommand.

Each module listed in COMMANDS defines `register(subparsers)` which adds its parser and
sets `func` (returning the process exit code) as the parser default.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS: tuple[str, ...] = (
    "akri.commands.version",
    "akri.commands.handler",
    "akri.commands.discover",
    "akri.commands.crds",
    "akri.commands.validate",
    "akri.commands.controller",
    "akri.commands.webhook",
    "akri.commands.agent",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="akri", description="Akri: a Kubernetes Resource Interface for the edge"
    )
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING, ERROR (env AKRI_LOG)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from akri.logs import setup_logging

    setup_logging(args.log_level)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed by a pager or `head`: not an error worth a traceback
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
