"""Plain-data views of a ``MeerkatMachine`` session, in the shape of ``SessionMachine.observe``.

Runtime input ids are ``input-<model id>``. Attempt counts of terminal inputs are shown only
for inputs abandoned after exhausting their attempts (as the model does).
"""

from __future__ import annotations

import functools
from typing import Any

from meerkat_runtime.session.completion import (
    Abandoned as AbandonedOutcome,
)
from meerkat_runtime.session.completion import (
    Cancelled,
    Completed,
    CompletedWithoutResult,
    CompletionHandle,
    CompletionOutcome,
    RuntimeTerminated,
)
from meerkat_runtime.session.core.ledger import InputRecord
from meerkat_runtime.session.row_codec import decode_lifecycle, decode_record
from meerkat_runtime.session.views import InputStateView, SessionView
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.inputs import (
    Abandoned,
    AbandonKind,
    Coalesced,
    Consumed,
    InputLifecycleState,
    InputTerminalOutcome,
    Superseded,
)

INPUT_PREFIX = "input-"

_TERMINATED = {
    "retired without runtime loop": "terminated_retired",
    "runtime reset": "terminated_reset",
    "runtime stopped": "terminated_stopped",
    "runtime destroyed": "terminated_destroyed",
    "runtime session unregistered": "terminated_unregistered",
}
_ABANDONED = {
    "max_attempts_exhausted": "abandoned_max_attempts",
    "superseded": "abandoned_superseded",
    "coalesced": "abandoned_coalesced",
}


def runtime_input_id(model_id: int) -> str:
    return f"{INPUT_PREFIX}{model_id}"


def model_input_id(runtime_id: str) -> int | str:
    """The model id of a runtime input id (an id the harness never minted is kept as is)."""
    rest = runtime_id[len(INPUT_PREFIX) :]
    return int(rest) if runtime_id.startswith(INPUT_PREFIX) and rest.isdigit() else runtime_id


def terminal_text(outcome: InputTerminalOutcome | None) -> str | None:
    match outcome:
        case None:
            return None
        case Consumed():
            return "consumed"
        case Superseded(superseded_by=by):
            return f"superseded:{model_input_id(by)}"
        case Coalesced(aggregate_id=aggregate):
            return f"coalesced:{model_input_id(aggregate)}"
        case Abandoned(reason=reason):
            return f"abandoned:{reason.kind.value}"
    raise TypeError(f"not an input terminal outcome: {outcome!r}")


def shown_attempts(phase: InputLifecycleState, attempts: int, outcome: InputTerminalOutcome | None) -> int | None:
    if not phase.is_terminal:
        return attempts
    if isinstance(outcome, Abandoned) and outcome.reason.kind is AbandonKind.MAX_ATTEMPTS_EXHAUSTED:
        return attempts
    return None


def completion_text(outcome: CompletionOutcome) -> str:
    """A completion handle's outcome in the model's words (``completed``, ``terminated_reset``...)."""
    match outcome:
        case Completed():
            return "completed"
        case CompletedWithoutResult():
            return "completed_without_result"
        case Cancelled():
            return "cancelled"
        case AbandonedOutcome(reason=reason):
            return _ABANDONED.get(reason, f"abandoned:{reason}")
        case RuntimeTerminated(reason=reason):
            return _TERMINATED.get(reason, f"runtime_terminated:{reason}")
    raise TypeError(f"not a completion outcome: {outcome!r}")


def handle_text(handle: CompletionHandle) -> str:
    outcome = handle.outcome() if handle.done() else None
    return "pending" if outcome is None else completion_text(outcome)


def _input_view(view: InputStateView) -> dict[str, Any]:
    phase = view.current_state
    return {
        "phase": phase.value,
        "attempts": shown_attempts(phase, view.attempts, view.terminal_outcome),
        "outcome": terminal_text(view.terminal_outcome),
        "lane": view.lane if phase is InputLifecycleState.QUEUED else None,
    }


def _stored_view(record: InputRecord) -> dict[str, Any]:
    return {
        "phase": record.phase.value,
        "attempts": shown_attempts(record.phase, record.attempts, record.terminal),
        "outcome": terminal_text(record.terminal),
    }


@functools.lru_cache(maxsize=4096)
def _decoded(payload: bytes) -> tuple[int | str, dict[str, Any], str]:
    """A stored row decoded once (rows rarely change between two observations): its model id,
    its view and its input kind."""
    record = decode_record(payload)
    return model_input_id(record.input_id), _stored_view(record), record.input.kind


def stored_view(store: RuntimeStore, runtime_id: str, *, kinds: dict[int | str, str] | None = None) -> dict[str, Any]:
    """What the store holds for the session, decoded with the runtime's own codecs; ``kinds``
    (when given) receives the kind of input each stored row holds."""
    lifecycle = store.load_machine_lifecycle(runtime_id)
    inputs: dict[int | str, dict[str, Any]] = {}
    for row in store.load_input_states(runtime_id):
        model_id, view, kind = _decoded(row.payload)
        inputs[model_id] = dict(view)
        if kinds is not None:
            kinds[model_id] = kind
    return {
        "record": None if lifecycle is None else decode_lifecycle(lifecycle).runtime_state.value,
        "inputs": inputs,
    }


def session_observation(
    view: SessionView | None, handles: dict[int, CompletionHandle], stored: dict[str, Any]
) -> dict[str, Any]:
    """The whole observation; ``view`` is ``None`` when the session is not registered."""
    run = view.current_run_inputs if view is not None else ()
    return {
        "registration": "unregistered" if view is None else view.registration_phase.value,
        "runtime_state": None if view is None else view.runtime_state.value,
        "inputs": {} if view is None else {model_input_id(v.input_id): _input_view(v) for v in view.inputs},
        "queue": [] if view is None else [model_input_id(i) for i in view.queue],
        "steer": [] if view is None else [model_input_id(i) for i in view.steer],
        "current_run": model_input_id(run[0]) if run else None,
        "waiters": {i: handle_text(h) for i, h in handles.items()},
        "stored": stored,
    }
