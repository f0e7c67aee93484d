"""Ctrl-C stops a running solver query at once and reaches Python as ``KeyboardInterrupt``.

Left alone, z3 installs its own SIGINT handler for the length of every query: the first Ctrl-C
cancels that one query, which comes back ``unknown`` ("interrupted from keyboard"), and Python
never hears of it, so a proof run carries on and can even end with exit status 0. Inside
:func:`interruptible_queries`, z3's handler is off (its ``ctrl_c`` parameter) and the process
keeps its own SIGINT handling. In the main thread a watcher thread, woken through
:func:`signal.set_wakeup_fd` when SIGINT arrives, interrupts the solver's context: the query
returns and Python raises ``KeyboardInterrupt`` at its next instruction. Elsewhere (another
thread, SIGINT ignored) the query runs to its end or its timeout, and the signal is handled as
the process's handler says.

A Ctrl-C can also surface inside the block as another error: a z3 call other than a check that
the interrupt cancels ("push canceled"), or an interrupt that ctypes wrapped while converting an
argument (``ArgumentError``); once SIGINT has arrived, any error leaving the block leaves it as
``KeyboardInterrupt``. An interrupt can also be lost whole: Python raises it inside a
finalizer (z3 objects are freed all the time), which ignores it, while the solver was between
queries. A long run therefore calls :func:`stop_if_interrupted` between its queries, and a block
that ends normally after a lost interrupt still raises ``KeyboardInterrupt``. The process's SIGINT
handler is assumed to stop the run (Python's default raises ``KeyboardInterrupt``). Leaving a
block that was interrupted clears the interrupt from the solver's context, so that the process
can run queries again. An interrupt that lands inside a z3 object's constructor leaves that object
half built, and its finalizer fails when the object is freed, whenever that is (often as the
process exits), printing "Exception ignored in ... AttributeError" after the run's own report:
once a block was interrupted, such reports are dropped for the rest of the process (only an
``AttributeError`` raised by a z3 finalizer; everything else is reported as before).
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import z3

WATCH = True
"""Switch for the watcher (tests turn it off to show what z3 does without it)."""

_depth = 0
_seen: threading.Event | None = None
"""Set by the watcher of the open block when SIGINT arrives."""
_SETTLE_S = 0.05
"""How long an error leaving the block waits for the watcher to say whether SIGINT arrived."""


def _watch(reader: socket.socket, seen: threading.Event) -> None:
    """Interrupt the solver for every SIGINT byte written to the wakeup socket; end when the
    writing side is closed."""
    while True:
        try:
            data = reader.recv(64)
        except OSError:
            return
        if not data:
            return
        if signal.SIGINT in data:
            seen.set()
            z3.main_ctx().interrupt()


def _clear_interrupt() -> None:
    """Drop an interrupt the solver's context still holds: z3 keeps one that arrived between
    queries until its next check, and every push until then fails ("push canceled"), so a
    later run in the same process (a notebook, a test run) would fail. A check on an empty
    solver clears it."""
    z3.Solver(ctx=z3.main_ctx()).check()


def _from_half_built_z3_object(unraisable: Any) -> bool:
    """Whether ``unraisable`` is a z3 finalizer's ``AttributeError``: the object it frees was
    never built (its constructor was interrupted), so there was nothing to free."""
    where = getattr(unraisable.object, "__module__", None) or ""
    return isinstance(unraisable.exc_value, AttributeError) and where.split(".")[0] == "z3"


def _drop_half_built_z3_reports() -> None:
    """From now on, do not report a z3 finalizer's ``AttributeError`` (installed once)."""
    report = sys.unraisablehook
    if getattr(report, "drops_half_built_z3", False):
        return

    def hook(unraisable: Any) -> None:
        if not _from_half_built_z3_object(unraisable):
            report(unraisable)

    hook.drops_half_built_z3 = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook


def stop_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if SIGINT arrived inside the open block, even if Python's
    own ``KeyboardInterrupt`` was lost (a checkpoint between queries)."""
    if _seen is not None and _seen.is_set():
        raise KeyboardInterrupt


@contextmanager
def interruptible_queries() -> Iterator[None]:
    """Make Ctrl-C interrupt solver queries for the block (re-entrant)."""
    global _depth, _seen
    if _depth or not WATCH:
        yield
        return
    z3.set_param("ctrl_c", False)
    _depth += 1
    watcher: threading.Thread | None = None
    reader, writer = socket.socketpair()
    previous: int | None = None
    seen = threading.Event()
    interrupted = False
    try:
        writer.setblocking(False)
        if threading.current_thread() is threading.main_thread() and callable(signal.getsignal(signal.SIGINT)):
            previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
            watcher = threading.Thread(target=_watch, args=(reader, seen), name="solver-interrupt", daemon=True)
            watcher.start()
            _seen = seen
        yield
    except KeyboardInterrupt:
        interrupted = True
        raise
    except Exception:
        # A Ctrl-C can surface as another error: z3 cancels a call other than a check ("push
        # canceled"), ctypes wraps an interrupt raised while it converts an argument
        # (ArgumentError). The watcher may not have run yet: give it a moment.
        if seen.is_set() or (watcher is not None and seen.wait(_SETTLE_S)):
            interrupted = True
            raise KeyboardInterrupt from None
        raise
    else:
        if seen.is_set():  # the interrupt was swallowed on the way (in a finalizer): still stop
            raise KeyboardInterrupt
    finally:
        _seen = None
        if previous is not None:
            signal.set_wakeup_fd(previous)
        writer.close()
        if watcher is not None:
            watcher.join()  # it has read every SIGINT byte, and interrupted the solver for each
        reader.close()
        if interrupted or seen.is_set():
            _drop_half_built_z3_reports()
        if seen.is_set():
            _clear_interrupt()  # after the watcher's last interrupt, which would otherwise stay
        _depth -= 1
        z3.set_param("ctrl_c", True)
