"""Faster forms of the priciest session steps, built on what they read (a fast path beside the
clear steps; ``tests/model_session/test_fast_steps.py`` compares the two on every ci state).

The step memory (``meerkat_model.session.step_memo``) runs a step once per core and action;
many cores share what some steps read. :class:`FastSteps` remembers those steps' work by it:

- steps that read only the store (:data:`~meerkat_model.session.step_claims.BY_STORE`: crash,
  unregister, a failed terminal snapshot): the whole result is a function of
  :func:`~meerkat_model.session.step_claims.store_key` and the handles, so it is remembered by
  them;
- steps that read the store only to commit (:data:`~meerkat_model.session.step_claims.COMMITS`:
  the control operations, interrupt, a run's failure or cancellation): everything but the
  committed store is a function of the attributes, memory, destroyed flag and handles, and the
  store they leave is ``full_commit`` of the memory they leave. That part is remembered by them,
  and the commit and the forgetting of spent attributes are done per state; a run's success
  (:data:`~meerkat_model.session.step_claims.BOUNDARY_COMMITS`) likewise, with
  ``boundary_commit`` of the run's input.

Every other action, a refusal, a self-loop, a malformed state or a step that raises takes the
clear step.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any

from meerkat_model.machine import Rejected, Stepped
from meerkat_model.session.durable import boundary_commit, full_commit
from meerkat_model.session.state import SessionState, forget_spent_attributes
from meerkat_model.session.step_claims import commits_a_boundary, commits_only, reads_only_the_store, store_key

StepResult = Stepped[SessionState] | Rejected
Step = Callable[[SessionState], StepResult]

_BY_STORE, _COMMIT, _BOUNDARY = 1, 2, 3
_new = tuple.__new__


class FastSteps:
    """``clear(state, action)`` for every action and state, with the work of the steps named in
    ``meerkat_model.session.step_claims`` remembered by what they read (see the module doc).
    ``raw[id(action)]`` is an action's step before the spent attributes are forgotten (needed for
    the committing steps). At most ``limit`` entries are kept (then it starts afresh)."""

    def __init__(
        self, clear: Callable[[SessionState, Any], StepResult], raw: dict[int, Step], actions: Iterable[Any]
    ) -> None:
        self._clear = clear
        self._raw = raw
        self._actions = tuple({id(a): a for a in actions}.values())  # keeps every keyed record alive
        self._kind: dict[int, int] = {}
        for a in self._actions:
            if reads_only_the_store(a):
                self._kind[id(a)] = _BY_STORE
            elif commits_only(a) and id(a) in raw:
                self._kind[id(a)] = _COMMIT
            elif commits_a_boundary(a) and id(a) in raw:
                self._kind[id(a)] = _BOUNDARY
        self._known: dict[Hashable, Any] = {}
        self.limit = 1 << 20

    def step(self, state: SessionState, action: Any) -> StepResult:
        """The clear step of ``action`` on ``state``."""
        kind = self._kind.get(id(action))
        if kind is None or type(state) is not SessionState:
            return self._clear(state, action)
        try:
            if kind == _BY_STORE:
                key: Hashable = (id(action), store_key(state), state[3])
            else:
                key = (id(action), state[0], state[2], state[4], state[3])
            known = self._known.get(key)
        except TypeError:  # a malformed state with unhashable parts
            return self._clear(state, action)
        if known is None:
            if len(self._known) >= self.limit:
                self._known.clear()
            known = self._known[key] = self._remembered(state, action, kind)
        if known is False:
            return self._clear(state, action)
        if kind == _BY_STORE:
            by_store: Stepped[SessionState] = known
            return by_store
        memory, waiters, destroyed, outputs, transition = known
        attrs = state[0]
        if kind == _COMMIT:
            durable = full_commit(attrs, state[1], memory)
        else:
            before = state[2]
            assert before is not None  # the step moved from it: a run was in flight
            durable = boundary_commit(attrs, state[1], memory, before[2])
        committed = _new(SessionState, (attrs, durable, memory, waiters, destroyed))
        return Stepped(forget_spent_attributes(committed), outputs, transition)

    def _remembered(self, state: SessionState, action: Any, kind: int) -> Any:
        """What is remembered of ``action`` on ``state`` (``False``: take the clear step)."""
        if kind == _BY_STORE:
            try:
                result = self._clear(state, action)
            except Exception:
                return False
            if not isinstance(result, Stepped) or result.state is state:
                return False
            return result
        try:
            raw = self._raw[id(action)](state)
        except Exception:
            return False
        if not isinstance(raw, Stepped) or raw.state is state or type(raw.state) is not SessionState:
            return False
        after = raw.state
        return (after[2], after[3], after[4], raw.outputs, raw.transition)
