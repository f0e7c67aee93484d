"""Ctrl-C is never lost during a long run.

Inside :func:`latched_interrupts`, SIGINT raises ``KeyboardInterrupt`` where the program is, as
Python's own handler does, and is also latched. An interrupt that lands where Python can only
report it — a finalizer or a callback the garbage collector runs, which prints "Exception ignored
in ..." and carries on — is raised again by the next :func:`raise_if_interrupted` (the lockstep
search calls it before every example and after every step), and that report is not printed (nor
any later report of a finalizer's error in the block: it follows from the interrupt). An
interrupt that lands inside an event loop's task leaves that task holding it; asyncio reports
such a task when it is collected ("Task exception was never retrieved", with a traceback):
those reports of the interrupt are dropped too, and once interrupted the block collects the
abandoned tasks before it ends, so that their reports come (and are dropped) inside it.
"""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

_pending = False


class _DropInterruptReports(logging.Filter):
    """Drops asyncio's reports of a task or callback that ended with ``KeyboardInterrupt``."""

    def filter(self, record: logging.LogRecord) -> bool:
        info = record.exc_info  # a tuple, None, or a bool (asyncio passes False)
        if not isinstance(info, tuple):
            return True
        return not (info[0] is not None and issubclass(info[0], KeyboardInterrupt))


_ASYNCIO_LOG = logging.getLogger("asyncio")
_DROP = _DropInterruptReports()


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if a Ctrl-C arrived inside :func:`latched_interrupts`."""
    if _pending:
        raise KeyboardInterrupt


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _pending
    _pending = True
    raise KeyboardInterrupt


@contextmanager
def latched_interrupts() -> Iterator[None]:
    """Latch Ctrl-C for the block (only in the main thread, and only when SIGINT has Python's
    default handler: a caller that installed its own keeps it)."""
    global _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    report = sys.unraisablehook

    def quiet(unraisable: Any) -> None:
        if _pending:
            # The interrupt swallowed here is raised again at the next check point; other errors
            # of finalizers after it follow from it (a foreign call cancelled, or an interrupt
            # that ctypes reported as an ArgumentError) and are not reported either.
            return
        report(unraisable)

    _pending = False
    signal.signal(signal.SIGINT, _on_sigint)
    sys.unraisablehook = quiet
    _ASYNCIO_LOG.addFilter(_DROP)
    try:
        yield
    finally:
        if _pending:
            gc.collect()  # abandoned tasks holding the interrupt are reported (and dropped) now
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.unraisablehook = report
        _ASYNCIO_LOG.removeFilter(_DROP)
        _pending = False
