"""What a finished input's waiters get, kept with its row.

Every rule that makes an input terminal stores the completion outcome its waiters receive on the
record (``InputRecord.outcome``), so the outcome is written with the terminal commit and
survives a restart: a later duplicate of its idempotency key is answered with it.
:func:`completion_of` reads it back, deriving it from the terminal record for rows stored
without one (all but a consumed run's result can be derived).
"""

from __future__ import annotations

from meerkat_runtime.session.completion import Abandoned as AbandonedOutcome
from meerkat_runtime.session.completion import Cancelled, CompletionOutcome, RuntimeTerminated
from meerkat_runtime.session.core.ledger import InputRecord
from meerkat_runtime.vocab.inputs import Abandoned, AbandonKind, Coalesced, Superseded

TERMINATION_REASONS = {
    AbandonKind.RETIRED: "retired without runtime loop",
    AbandonKind.RESET: "runtime reset",
    AbandonKind.STOPPED: "runtime stopped",
    AbandonKind.DESTROYED: "runtime destroyed",
}
"""The ``runtime_terminated`` reason of an input a control operation abandoned."""


def abandoned_outcome(kind: AbandonKind) -> CompletionOutcome:
    """The outcome of an input abandoned for ``kind``."""
    if kind is AbandonKind.CANCELLED:
        return Cancelled()
    if kind is AbandonKind.MAX_ATTEMPTS_EXHAUSTED:
        return AbandonedOutcome(kind.value)
    return RuntimeTerminated(TERMINATION_REASONS[kind])


def completion_of(record: InputRecord) -> CompletionOutcome | None:
    """The outcome a terminal input's waiters got: the stored one, else derived from its terminal
    record; ``None`` for an active input and for a consumed one stored without its result."""
    if record.outcome is not None:
        return record.outcome
    terminal = record.terminal
    if isinstance(terminal, Superseded):
        return AbandonedOutcome("superseded")
    if isinstance(terminal, Coalesced):
        return AbandonedOutcome("coalesced")
    if isinstance(terminal, Abandoned):
        return abandoned_outcome(terminal.reason.kind)
    return None
