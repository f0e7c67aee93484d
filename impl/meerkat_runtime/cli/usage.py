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
import re
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


_CONNINFO_KEYWORDS = frozenset(
    {
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "service",
        "options",
        "application_name",
        "connect_timeout",
        "sslmode",
        "target_session_attrs",
    }
)
_FIRST_KEYWORD = re.compile(r"\s*([a-z_]+)\s*=")


def looks_like_conninfo(raw: str) -> bool:
    """Whether ``raw`` starts like a libpq ``key=value`` connection string (``host=... dbname=...``)."""
    found = _FIRST_KEYWORD.match(raw)
    return found is not None and found.group(1) in _CONNINFO_KEYWORDS


CONNINFO_NOT_REPEATED = "a libpq key=value connection string (not repeated here: it may hold a password)"


def existing_file(raw: str, *, takes: str = "") -> str:
    """An argparse ``type``: the path of an existing regular file (a ``postgresql://`` URL or a
    ``key=value`` connection string is refused by name: the commands that take only a path work
    on SQLite store files). ``takes``: what the argument may be, added to the message of a path
    that does not exist."""
    if raw.startswith(("postgresql://", "postgres://")):
        raise argparse.ArgumentTypeError(
            "a postgresql:// URL: this command works on SQLite store files only (the reading commands "
            "sessions, inputs, ops and show take a URL)"
        )
    path = Path(raw)
    if not path.exists() and looks_like_conninfo(raw):
        raise argparse.ArgumentTypeError(
            f"{CONNINFO_NOT_REPEATED}: this command works on SQLite store files only (the reading commands "
            "sessions, inputs, ops and show take a postgresql:// URL)"
        )
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{raw!r} does not exist{takes}")
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
