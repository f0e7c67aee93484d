"""Step results remembered by the part of a state that a step reads (a fast path beside the clear
steps; :func:`disagreements` compares the two).

A session state is ``(attrs, durable, memory, waiters, destroyed)``. Many states differ only in
their completion handles (which inputs' callers still wait, and how the others were told): the
ci profile has 38,712 states but 5,599 distinct attributes, store, memory and destroyed flag,
the deep profile 526,291 states and 139,419. The steps treat the handles one by one and decide
nothing else by them: a step resolves pending handles (``waiters.resolve*``: a handle that is
not pending is left alone), creates the handle of a fresh input, or drops every handle (a
crash); a resolved handle never becomes another outcome; the only outputs that depend on the
handles are the ``("resolved", i, outcome)`` of the handles the step resolves. So what a step
does to a state is fixed by its *core* (attributes, store, memory, destroyed flag), apart from
the handles and those outputs, and both follow from two runs of the clear step on the core:

- with every handle pending (``A``): what each pending handle becomes, and the outputs with
  every resolution; a refusal (no step refuses by the handles) needs no second run;
- with every handle resolved (``B``): which handles that are not pending the step sets anyway
  (a crash drops them, an accept creates its fresh input's handle), and to what. The machine
  names the actions whose steps change no handle but by resolving pending ones (every action
  but the accepts and the crash): their record is taken from ``A`` alone (what ``B`` would find
  is known: no handle that is not pending changes, and the outputs are ``A``'s without the
  resolutions), and the comparison with the clear steps (:func:`disagreements`, on every ci
  state in the tests) stands for the cross-check below.

:class:`StepMemo` remembers, per core and action, the record of those runs: a refusal, the state
itself (both runs returned their own state), or a move (both reached the same attributes,
store, memory, destroyed flag and transition). On a state with that core the result is rebuilt:
each pending handle as in ``A``, each other handle as in ``B`` where ``B`` changed it, else
kept; the outputs of ``A`` without the resolutions of handles that are not pending. The runs
also check each other: when ``B``'s outputs are not ``A``'s without their resolutions, or the
runs disagree otherwise, nothing is remembered and that core and action always take the clear
step. Only actions the machine built itself (kept alive by it, so keyed by identity) are
remembered; anything else, and any state that is not a well-formed session state, takes the
clear step.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import Any

from meerkat_model.machine import Rejected, Stepped
from meerkat_model.session.state import SessionState, Waiter

StepResult = Stepped[SessionState] | Rejected
ClearStep = Callable[[SessionState, Any], StepResult]

_PENDING = Waiter.PENDING
_RESOLVED = Waiter.COMPLETED  # any resolved outcome: no step tells them apart
_RESOLUTION = "resolved"
_CLEAR, _REFUSED, _SAME, _MOVED = 0, 1, 2, 3
_ALWAYS_CLEAR = (_CLEAR,)
_PER_CORE = (_CLEAR, "per core")  # a key under which an action was seen to move
_new = tuple.__new__


def core(state: SessionState) -> tuple[object, ...]:
    """What a step reads of ``state`` besides its handles (see the module docstring)."""
    return (state[0], state[1], state[2], state[4])


def _with_handles(state: SessionState, handle: Waiter) -> SessionState:
    return _new(SessionState, (state[0], state[1], state[2], (handle,) * len(state[3]), state[4]))


def _resolutions(outputs: tuple[Any, ...]) -> tuple[int, ...]:
    """The input of each ``("resolved", i, outcome)`` among ``outputs``."""
    return tuple(o[1] for o in outputs if type(o) is tuple and len(o) == 3 and o[0] == _RESOLUTION)


def _unresolved(outputs: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(o for o in outputs if not (type(o) is tuple and len(o) == 3 and o[0] == _RESOLUTION))


def _record(
    state: SessionState,
    clear: ClearStep,
    action: Any,
    intern: Callable[[Any], Any] = lambda part: part,
    *,
    resolves_only: bool = False,
    pending: SessionState | None = None,
) -> tuple[Any, ...]:
    """The record of ``action`` on the core of ``state`` (see the module docstring); the parts
    of a successor go through ``intern``. With ``resolves_only`` the step is one that changes no
    handle but by resolving pending ones, so one run (``A``) is enough. ``pending``: the core
    with every handle pending, when the caller has it already."""
    if pending is None:
        pending = _with_handles(state, _PENDING)
    try:
        a = clear(pending, action)
        if not isinstance(a, Stepped):
            return (_REFUSED, a)
        if resolves_only:
            return _one_run_record(state, pending, a, intern)
        resolved = _with_handles(state, _RESOLVED)
        b = clear(resolved, action)
    except Exception:  # the clear step on the state itself reports it
        return _ALWAYS_CLEAR
    if not isinstance(b, Stepped):
        return _ALWAYS_CLEAR
    if a.transition != b.transition or _unresolved(a.outputs) != b.outputs:
        return _ALWAYS_CLEAR
    if a.state is pending and b.state is resolved:
        return (_SAME, a.outputs, a.transition, _resolutions(a.outputs))
    after, other = a.state, b.state
    if (
        a.state is pending
        or b.state is resolved
        or type(after) is not SessionState
        or type(other) is not SessionState
        or (after[0], after[1], after[2], after[4]) != (other[0], other[1], other[2], other[4])
        or len(after[3]) != len(state[3])
        or len(other[3]) != len(state[3])
    ):
        return _ALWAYS_CLEAR
    if_pending = tuple((i, w) for i, w in enumerate(after[3]) if w is not _PENDING)
    otherwise = tuple((i, w) for i, w in enumerate(other[3]) if w is not _RESOLVED)
    parts = (intern(after[0]), intern(after[1]), intern(after[2]), after[4])
    return (_MOVED, a.outputs, a.transition, _resolutions(a.outputs), parts, if_pending, otherwise)


def _one_run_record(
    state: SessionState, pending: SessionState, a: Stepped[SessionState], intern: Callable[[Any], Any]
) -> tuple[Any, ...]:
    """The record of a step that changes no handle but by resolving pending ones, from its run
    ``a`` on the core with every handle pending (see :func:`_record`)."""
    after = a.state
    if after is pending:
        return (_SAME, a.outputs, a.transition, _resolutions(a.outputs))
    if type(after) is not SessionState or len(after[3]) != len(state[3]):
        return _ALWAYS_CLEAR
    if_pending = tuple((i, w) for i, w in enumerate(after[3]) if w is not _PENDING)
    parts = (intern(after[0]), intern(after[1]), intern(after[2]), after[4])
    return (_MOVED, a.outputs, a.transition, _resolutions(a.outputs), parts, if_pending, ())


_SET_STATE, _SET_OUTPUTS, _SET_TRANSITION = (
    Stepped.__dict__["state"].__set__,
    Stepped.__dict__["outputs"].__set__,
    Stepped.__dict__["transition"].__set__,
)
"""The slots of a ``Stepped``, set directly (a replay builds millions of them)."""
_object_new = object.__new__


def _outputs(record: tuple[Any, ...], waiters: tuple[Waiter, ...]) -> tuple[Any, ...]:
    """The recorded outputs less the resolutions of handles that are not pending in ``waiters``."""
    outputs: tuple[Any, ...] = record[1]
    for i in record[3]:
        if waiters[i] is not _PENDING:
            return tuple(
                o
                for o in outputs
                if not (type(o) is tuple and len(o) == 3 and o[0] == _RESOLUTION and waiters[o[1]] is not _PENDING)
            )
    return outputs


class StepMemo:
    """The clear step ``clear`` with its results remembered per core and action (for the
    ``actions`` the machine built; see the module docstring). At most ``limit`` cores are kept
    (then the memory starts afresh).

    With ``refusal_key``, the actions in ``keyed`` are ones whose refusals and self-loops are a
    function of ``refusal_key(state)`` (the caller states this): whether the step refuses, or
    returns the state itself, and then the refusal, or the outputs and transition. A refusal or
    self-loop met under a key is then shared by every core with that key, without a step (a
    key of ``None`` shares nothing).

    ``write_failing`` pairs ``(failing, base)``: ``failing`` is ``base`` with the store's write
    failing, and the caller states that its step refuses as ``base`` refuses, returns what
    ``base`` returns where ``base`` returns the state itself (nothing written), and gives one
    fixed refusal wherever ``base`` moves. Its records are taken from ``base``'s then (the
    fixed refusal met once)."""

    def __init__(
        self,
        clear: ClearStep,
        actions: Iterable[Any],
        limit: int = 1 << 20,
        *,
        resolves_only: Iterable[Any] = (),
        refusal_key: Callable[[SessionState], Hashable] | None = None,
        keyed: Iterable[Any] = (),
        write_failing: Iterable[tuple[Any, Any]] = (),
    ) -> None:
        self._clear = clear
        self._actions = tuple({id(a): a for a in actions}.values())  # keeps every keyed record alive
        self._slots = {id(a): k for k, a in enumerate(self._actions)}
        single = {id(a) for a in resolves_only}
        self._single = [id(a) in single for a in self._actions]  # per slot: one run is enough
        by_key = {id(a) for a in keyed} if refusal_key is not None else set()
        self._keyed = [id(a) in by_key for a in self._actions]  # per slot: refused by the key alone
        self._refusal_key = refusal_key
        # refusal key -> per slot: the refusal or self-loop met under that key, _PER_CORE, or None
        self._by_key: dict[Hashable, list[tuple[Any, ...] | None]] = {}
        self._key_row: list[tuple[Any, ...] | None] | None = None  # that list for the state last met
        # per slot: the slot of the action it is with the store's write failing (or -1), and
        # the refusal it gives where that action writes, once met
        self._base = [-1] * len(self._actions)
        for failing, base in write_failing:
            if id(failing) in self._slots and id(base) in self._slots:
                self._base[self._slots[id(failing)]] = self._slots[id(base)]
        self._write_failure: list[tuple[Any, ...] | None] = [None] * len(self._actions)
        self._limit = limit
        self._cores: dict[tuple[object, ...], list[tuple[Any, ...] | None]] = {}
        self._state: Any = None  # the state last stepped, and the records of its core
        self._records: list[tuple[Any, ...] | None] = []
        self._pending: SessionState | None = None  # that core with every handle pending, once built
        # one object per distinct successor part: states rebuilt from records share them, so
        # comparing two equal states (a hit in the search's table) finds them identical at once
        self._parts: dict[Any, Any] = {}

    def __len__(self) -> int:
        """The cores remembered now."""
        return len(self._cores)

    def _records_of(self, state: SessionState) -> list[tuple[Any, ...] | None]:
        key = core(state)
        records = self._cores.get(key)
        if records is None:
            if len(self._cores) >= self._limit:
                self._cores.clear()
                self._parts.clear()
                self._by_key.clear()
            # one record per action, then the actions left once the refused ones are dropped
            records = self._cores[key] = [None] * (len(self._actions) + 1)
        return records

    def enabled(self, state: SessionState, candidates: Callable[[SessionState], Sequence[Any]]) -> Sequence[Any]:
        """``candidates(state)`` less the actions whose remembered record on the core of
        ``state`` is a refusal (recording them when needed). ``candidates`` must be a function
        of the core, like the machine's ``actions``: the list is kept per core."""
        if state is not self._state:
            if type(state) is not SessionState or type(state[3]) is not tuple:
                return candidates(state)
            try:
                records = self._records_of(state)
            except TypeError:  # a malformed state with unhashable parts
                return candidates(state)
            self._state, self._records, self._pending, self._key_row = state, records, None, None
        records = self._records
        kept = records[-1]
        if kept is None:
            out: list[Any] = []
            slots = self._slots
            for action in candidates(state):
                slot = slots.get(id(action))
                if slot is not None:
                    record = records[slot]
                    if record is None:
                        record = records[slot] = self._recorded(state, action, slot)
                    if record[0] == _REFUSED:
                        continue
                out.append(action)
            kept = records[-1] = tuple(out)
        return kept

    def _recorded(self, state: SessionState, action: Any, slot: int) -> tuple[Any, ...]:
        """The record of ``action`` (in ``slot``) on the core of ``state``, the state last met."""
        row = self._key_row if self._keyed[slot] else None
        if row is None and self._keyed[slot]:
            row = self._key_row = self._refusals_by_key(state)
        if row is not None:
            known = row[slot]
            if known is not None and known is not _PER_CORE:
                return known  # the refusal or self-loop met under this state's key
        base = self._base[slot]
        record = self._with_write_failing(state, slot, base) if base >= 0 else self._stepped_record(state, action, slot)
        if row is not None and record[0] != _CLEAR:
            row[slot] = _PER_CORE if record[0] == _MOVED else record
        return record

    def _stepped_record(self, state: SessionState, action: Any, slot: int) -> tuple[Any, ...]:
        """The record of ``action`` (in ``slot``) on the core of ``state``, from its clear step."""
        pending = self._pending
        if pending is None:
            pending = self._pending = _with_handles(state, _PENDING)
        record = _record(state, self._clear, action, self._intern, resolves_only=self._single[slot], pending=pending)
        if record[0] != _MOVED:  # refusals and self-loops repeat across cores: one of each
            record = self._intern(record)
        return record

    def _with_write_failing(self, state: SessionState, slot: int, base: int) -> tuple[Any, ...]:
        """The record of the action in ``slot``, the one in ``base`` with the store's write
        failing: that action's refusal or self-loop (nothing written) as it is; where it moves,
        the refusal the failing write gives (one for every core, met once)."""
        records = self._records
        of_base = records[base]
        if of_base is None:
            of_base = records[base] = self._recorded(state, self._actions[base], base)
        tag = of_base[0]
        if tag in (_REFUSED, _SAME):
            return of_base
        if tag == _MOVED:
            failure = self._write_failure[slot]
            if failure is None:
                failure = self._stepped_record(state, self._actions[slot], slot)
                if failure[0] == _REFUSED:
                    self._write_failure[slot] = failure
            return failure
        return self._stepped_record(state, self._actions[slot], slot)

    def _refusals_by_key(self, state: SessionState) -> list[tuple[Any, ...] | None] | None:
        """The refusals and self-loops met under the refusal key of ``state`` (``None``: no key
        for it)."""
        assert self._refusal_key is not None
        try:
            key = self._refusal_key(state)
            if key is None:
                return None
            row = self._by_key.get(key)
            if row is None:
                row = self._by_key[key] = [None] * len(self._actions)
        except Exception:  # a malformed state: every step is taken
            return None
        return row

    def _intern(self, part: Any) -> Any:
        try:
            return self._parts.setdefault(part, part)
        except TypeError:  # unhashable: kept as it is
            return part

    def step(self, state: SessionState, action: Any) -> StepResult:
        """The clear step of ``action`` on ``state``, rebuilt from memory when a state with the
        same core met ``action`` before."""
        if state is not self._state:
            if type(state) is not SessionState or type(state[3]) is not tuple:
                return self._clear(state, action)
            try:
                records = self._records_of(state)
            except TypeError:  # a malformed state with unhashable parts
                return self._clear(state, action)
            self._state, self._records, self._pending, self._key_row = state, records, None, None
        slot = self._slots.get(id(action))
        if slot is None:
            return self._clear(state, action)
        record = self._records[slot]
        if record is None:
            record = self._records[slot] = self._recorded(state, action, slot)
        tag = record[0]
        if tag == _MOVED:  # the recorded move, rebuilt here inline (the search replays millions):
            # each pending handle as the run with every handle pending left it, each other one
            # as the run with every handle resolved changed it, else kept
            waiters = state[3]
            outputs = record[1]
            for i in record[3]:
                if waiters[i] is not _PENDING:
                    outputs = _outputs(record, waiters)
                    break
            after = record[4]
            handles = None
            for i, w in record[5]:
                if waiters[i] is _PENDING:
                    if handles is None:
                        handles = list(waiters)
                    handles[i] = w
            for i, w in record[6]:
                if waiters[i] is not _PENDING:
                    if handles is None:
                        handles = list(waiters)
                    handles[i] = w
            if handles is not None:
                waiters = tuple(handles)
            result: Stepped[SessionState] = _object_new(Stepped)
            _SET_STATE(result, _new(SessionState, (after[0], after[1], after[2], waiters, after[3])))
            _SET_OUTPUTS(result, outputs)
            _SET_TRANSITION(result, record[2])
            return result
        if tag == _SAME:
            result = _object_new(Stepped)
            _SET_STATE(result, state)
            _SET_OUTPUTS(result, _outputs(record, state[3]) if record[3] else record[1])
            _SET_TRANSITION(result, record[2])
            return result
        if tag == _REFUSED:
            refusal: Rejected = record[1]
            return refusal
        return self._clear(state, action)


def _same(state: SessionState, a: StepResult, b: StepResult) -> bool:
    """Whether two results of a step on ``state`` agree, down to returning ``state`` itself."""
    if isinstance(a, Stepped) and isinstance(b, Stepped):
        if (a.state is state) != (b.state is state):
            return False
        return (a.state, a.outputs, a.transition) == (b.state, b.outputs, b.transition)
    return a == b


def disagreements(
    memo: Callable[[SessionState, Any], StepResult],
    clear: ClearStep,
    states: Sequence[SessionState],
    actions: Callable[[SessionState], Iterable[Any]],
) -> Iterator[tuple[SessionState, Any, StepResult, StepResult]]:
    """Every ``(state, action, memoised result, clear result)`` over ``states`` (each with its
    ``actions``) where the two steps differ (state, outputs, transition, refusal, or whether the
    state itself is returned)."""
    for state in states:
        for action in actions(state):
            got, want = memo(state, action), clear(state, action)
            if not _same(state, got, want):
                yield state, action, got, want
