"""Entry point of ``meerkat-runtime``: the subcommand table and the dispatcher."""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

from meerkat_runtime.cli import check, inputs, migrate, ops, quarantine, sessions, show
from meerkat_runtime.cli.usage import OneLineParser, interruptible

PROG = "meerkat-runtime"

SUBCOMMANDS: tuple[ModuleType, ...] = (sessions, inputs, ops, show, check, migrate, quarantine)
"""Each module has ``NAME``, ``HELP``, ``configure(parser)`` and ``run(args) -> int``."""


def parser() -> argparse.ArgumentParser:
    top = OneLineParser(
        prog=PROG,
        description="Look at and look after the stored state of meerkat sessions: an SQLite store file "
        "(every command) or a PostgreSQL store (sessions, inputs, ops, show).",
        epilog="Run 'meerkat-runtime COMMAND --help' for a command's options, defaults and exit statuses. "
        "The reading commands (sessions, inputs, ops, show, check) never write. "
        "exit status: 0 success; 1 damage found, nothing found, or the work failed; 2 usage error; "
        "3 check only: no damage found but the check was incomplete (an older release's file); "
        "130 interrupted (Ctrl-C)",
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=OneLineParser)
    for module in SUBCOMMANDS:
        sub = commands.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        sub.set_defaults(run=module.run)
        module.configure(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    code: int = interruptible(lambda: int(args.run(args)), f"{PROG} {args.command}")
    return code


if __name__ == "__main__":
    sys.exit(main())
