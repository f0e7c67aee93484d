"""Conventions every command of the project follows.

* A usage error is one line on standard error, ``PROG: error: WHAT (see PROG --help)``, and exit
  status 2, found before any long work starts (:class:`OneLineParser`, :class:`UsageError`).
* Exit statuses: 0 success, 1 a check failed, 2 a usage error (or a missing extra), 130
  interrupted with Ctrl-C (after the partial report).
* A reader that goes away before the output ends (``| head``) ends it quietly, no traceback,
  with exit status 1, as ``meerkat-runtime`` does (:func:`quiet_when_stdout_closes`).
* Option values that make no sense (no examples, no steps, a zero interval) are refused by the
  parser itself (:func:`int_at_least`, :func:`seconds_at_least`).

Standard library only: every command imports this before anything that needs an extra.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
from collections.abc import Callable
from typing import NoReturn, TextIO

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A command-line mistake; reported on one line with exit status 2."""

    see_help = True
    """Whether the line ends with ``(see PROG --help)``."""


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (no usage block) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def usage_error(prog: str, message: object, stream: TextIO | None = None) -> int:
    """Print ``message`` as a one-line usage error of ``prog``; return exit status 2."""
    hint = f" (see {prog} --help)" if getattr(message, "see_help", True) else ""
    print(f"{prog}: error: {message}{hint}", file=stream if stream is not None else sys.stderr)
    return EXIT_USAGE


def quiet_when_stdout_closes(work: Callable[[], int]) -> int:
    """Run ``work`` and flush standard output. A reader that went away (``BrokenPipeError``
    while standard output's reader is gone, ``| head``) ends the output quietly: standard
    output's descriptor, which nothing can be written to any more, is pointed at ``/dev/null``
    (so the flush at exit reports nothing) and the status is 1, as ``meerkat-runtime``'s. A
    ``BrokenPipeError`` of another pipe (standard output still has its reader) propagates."""
    try:
        status = work()
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        fd = _closed_stdout_fd()
        if fd is None:
            raise
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)  # no second error at exit
        finally:
            os.close(devnull)
        return EXIT_FAILED


def _closed_stdout_fd() -> int | None:
    """Standard output's descriptor if its reader has gone away (a pipe or socket whose other
    end is closed), else ``None`` (also when it has no descriptor). Where ``select.poll`` is
    missing, every descriptor counts as closed."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return None
    if not hasattr(select, "poll"):
        return fd
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    gone = select.POLLERR | select.POLLHUP
    return fd if any(events & gone for _, events in poller.poll(0)) else None


def interruptible(main: Callable[[], int | None], prog: str) -> int:
    """Run ``main`` (which prints as it goes); on Ctrl-C say so in one line instead of a
    traceback and return 130. What ``main`` printed before is the partial report. A Ctrl-C that
    a finalizer swallowed (see :mod:`meerkat_model.cli.interrupts`) still ends the run as
    interrupted, at the latest when ``main`` returns."""
    from meerkat_model.cli.interrupts import latched_interrupts, raise_if_interrupted

    def work() -> int:
        try:
            with latched_interrupts():
                status = main() or EXIT_OK
                raise_if_interrupted()
                return status
        except KeyboardInterrupt:
            sys.stdout.flush()
            print(f"{prog}: interrupted (what is printed above was measured before)", file=sys.stderr)
            return EXIT_INTERRUPTED

    return quiet_when_stdout_closes(work)


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer no smaller than ``minimum``."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{raw!r}: must be at least {minimum}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def seconds_at_least(minimum: float) -> Callable[[str], float]:
    """An argparse ``type``: a number of seconds no smaller than ``minimum``."""

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a number of seconds") from None
        if not value >= minimum:  # also refuses nan
            raise argparse.ArgumentTypeError(f"{raw!r}: must be at least {minimum:g} seconds")
        return value

    parse.__name__ = f"seconds >= {minimum:g}"
    return parse


def milliseconds_above_zero(raw: str) -> float:
    """An argparse ``type``: a finite number of milliseconds greater than 0."""
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of milliseconds") from None
    if not 0 < value < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"{raw!r}: must be a number of milliseconds above 0")
    return value
