"""Invariant results remembered per core (a fast path beside the clear checks, like the step
memory of ``meerkat_model.session.step_memo``).

Most session invariants never read the completion handles, so their result is fixed by the
state's core (attributes, store, memory, destroyed flag), which many states share.
:func:`remembered` wraps such invariants so that each is computed once per core; the others
are left as they are. A check that raises is not remembered (the state it raised on reports
it), and a state whose core cannot be hashed is checked directly.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from meerkat_model.machine import Invariant
from meerkat_model.session.state import SessionState
from meerkat_model.session.step_memo import core

Check = Callable[[SessionState], Any]
"""A function of the core: an invariant's check, or a view of the state such as its statuses."""

_UNKNOWN: Any = object()


class CoreResults:
    """The results of ``checks`` per core (at most ``limit`` cores, then afresh)."""

    def __init__(self, checks: Sequence[Check], limit: int = 1 << 20) -> None:
        self.checks = tuple(checks)
        self._limit = limit
        self._cores: dict[tuple[object, ...], list[Any]] = {}
        self._last: list[Any] = [None, []]  # the state last checked, and the results of its core

    def result(self, k: int, state: SessionState) -> Any:
        """``checks[k](state)``, remembered for the core of ``state``."""
        last = self._last
        if state is not last[0]:
            try:
                key = core(state)
                results = self._cores.get(key)
            except (TypeError, IndexError):  # a malformed state
                return self.checks[k](state)
            if results is None:
                if len(self._cores) >= self._limit:
                    self._cores.clear()
                results = self._cores[key] = [_UNKNOWN] * len(self.checks)
            last[0], last[1] = state, results
        got = last[1][k]
        if got is _UNKNOWN:
            got = last[1][k] = self.checks[k](state)
        return got

    def check(self, k: int) -> Callable[[SessionState], Any]:
        """:meth:`result` for ``checks[k]`` as a check of its own (answering at once for the
        state last checked, whose result is known)."""
        last, result = self._last, self.result

        def remembered_check(state: SessionState) -> Any:
            if state is last[0]:
                got = last[1][k]
                if got is not _UNKNOWN:
                    return got
            return result(k, state)

        return remembered_check


def remembered(
    invariants: Sequence[Invariant[SessionState]], handle_readers: Collection[str]
) -> tuple[Invariant[SessionState], ...]:
    """``invariants`` with the ones not named in ``handle_readers`` remembered per core."""
    return remembered_with_views(invariants, handle_readers, ())[0]


def remembered_with_views(
    invariants: Sequence[Invariant[SessionState]],
    handle_readers: Collection[str],
    views: Sequence[Callable[[SessionState], Any]],
) -> tuple[tuple[Invariant[SessionState], ...], tuple[Callable[[SessionState], Any], ...]]:
    """:func:`remembered`, and each of ``views`` (functions of the core, like the invariants
    that do not read the handles) remembered per core beside them: a view asked right after the
    invariants of the same state answers at once."""
    kept = [inv for inv in invariants if inv.name not in handle_readers]
    memo = CoreResults([*(inv.check for inv in kept), *views])
    slots = {inv.name: k for k, inv in enumerate(kept)}
    checks = tuple(
        Invariant(inv.name, inv.description, memo.check(slots[inv.name])) if inv.name in slots else inv
        for inv in invariants
    )
    return checks, tuple(memo.check(len(kept) + k) for k in range(len(views)))
