"""Breadth-first enumeration of every reachable state of a machine, to a fixed point.

The search loop is kept lean: a dict of seen states to indexes, a parent array for shortest
traces and a flat edge record; the networkx graph is built afterwards on demand. Every
invariant is checked on every new state; a violating state is recorded (the first per
invariant is the shallowest, as the search is breadth-first) and not expanded further. The
loop itself is :class:`~meerkat_model.verifier.search.Partition`, shared with the parallel
search.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from meerkat_model.machine import Machine
from meerkat_model.verifier.exploration import Exploration
from meerkat_model.verifier.parallel import explore_parallel, fork_available
from meerkat_model.verifier.search import paused_gc, search_sequential

ProgressFn = Callable[[int, int, float], None]
"""Called as ``progress(states, frontier, elapsed_seconds)`` every few thousand states."""

PROGRESS_EVERY = 4096


def explore(
    machine: Machine[Any, Any],
    *,
    symmetry: bool = True,
    progress: ProgressFn | None = None,
    max_states: int | None = None,
    workers: int = 1,
    check_describe: bool = False,
) -> Exploration:
    """Enumerate the reachable states of ``machine`` (canonical forms when ``symmetry``).

    Stops at the fixed point, or after ``max_states`` states (then ``complete`` is false).
    ``workers > 1`` runs the level-synchronous, hash-partitioned search of
    :mod:`meerkat_model.verifier.parallel` in that many processes (forked; where ``fork`` is
    not available the sequential search runs); ``workers == 1`` searches in this process.

    Besides the machine's invariants and step checks, every step is checked against its
    transition's declarations (when the machine reports ``statuses``), an exception raised by a
    step or a check is a violation of that step or state (never an abort), and with
    ``check_describe`` every state must be rendered by ``describe`` without raising."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if workers > 1 and fork_available():
        return explore_parallel(
            machine,
            workers=workers,
            symmetry=symmetry,
            progress=progress,
            max_states=max_states,
            check_describe=check_describe,
        )
    started = time.perf_counter()

    def elapsed() -> float:
        return time.perf_counter() - started

    tick = None
    if progress is not None:
        report = progress

        def tick(states: int, frontier: int) -> None:
            report(states, frontier, elapsed())

    with paused_gc():
        return search_sequential(
            machine,
            symmetry=symmetry,
            max_states=max_states,
            elapsed=elapsed,
            tick=tick,
            tick_every=PROGRESS_EVERY,
            check_describe=check_describe,
        )
