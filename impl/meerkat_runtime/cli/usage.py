"""Command-line conventions of ``meerkat-runtime`` (the same as the project's other commands).

* A usage error is one line on standard error, ``PROG: error: WHAT (see PROG --help)``, and exit
  status 2, found before any work starts.
* A failure of the work itself (damage found, a refused write) is exit status 1; when it is
  not a report, it is one line on standard error, ``PROG: error: WHAT``.
* Ctrl-C prints one line and exits 130.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A command-line mistake found after parsing (e.g. PATH does not exist); exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (no usage block) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def usage_error(prog: str, message: object) -> int:
    print(f"{prog}: error: {message} (see {prog} --help)", file=sys.stderr)
    return EXIT_USAGE


def failure(prog: str, message: object) -> int:
    """The work failed (not a usage mistake): one line on stderr, exit status 1."""
    text = " ".join(str(message).split())
    print(f"{prog}: error: {text}", file=sys.stderr)
    return EXIT_FAILED


def existing_file(raw: str) -> str:
    """An argparse ``type``: the path of an existing regular file (a ``postgresql://`` URL is
    refused by name: the commands that take only a path work on SQLite store files)."""
    if raw.startswith(("postgresql://", "postgres://")):
        raise argparse.ArgumentTypeError(
            "a postgresql:// URL: this command works on SQLite store files only (the reading commands "
            "sessions, inputs, ops and show take a URL)"
        )
    path = Path(raw)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{raw!r} does not exist")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{raw!r} is not a file")
    return raw


def interruptible(work: Callable[[], int], prog: str) -> int:
    """Run ``work``; Ctrl-C is one line and exit status 130; a reader that went away (``| head``)
    ends the output quietly."""
    try:
        return work()
    except KeyboardInterrupt:
        sys.stdout.flush()
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_FAILED
