"""Runs started by ``accept_input_and_run``: the caller runs the input itself, without a loop.

Such a run starts from Idle, so its pre-run phase is Idle (a loop run starts from Attached or
Retired); a loop may be attached while it is in flight. Its caller waits for it, and learns how
it ended from the step that ends it, as one output ``("direct_result", i, outcome)``:

- ``returned``: the run succeeded and its boundary is committed (the call returns its value);
- ``executor_failed`` / ``executor_cancelled``: the executor's error, raised again once the
  failure (input requeued) or the cancellation (input Abandoned) is committed;
- ``durable_write_failed``: the boundary commit, or the commit after a failure, failed;
- ``invalid_runtime_transition``: the run was interrupted, or the runtime stopped, destroyed or
  unregistered, before it ended (the caller's run is cancelled).

A crash takes the caller with it: no output.
"""

from __future__ import annotations

from meerkat_model.session.state import NO_ID, Memory
from meerkat_model.vocab.statuses import RuntimePhase

DIRECT_RESULT = "direct_result"


def direct_run(memory: Memory | None) -> int | None:
    """The input of the run in flight when ``accept_input_and_run`` started it, else ``None``."""
    if memory is None or memory.run == NO_ID or memory.pre_run != RuntimePhase.IDLE:
        return None
    return memory.run


def caller_result(memory: Memory | None, outcome: str) -> tuple[tuple[str, int, str], ...]:
    """What the caller of a direct run in flight in ``memory`` is told when the run ends with
    ``outcome`` (nothing when the run in flight, if any, belongs to the loop)."""
    i = direct_run(memory)
    return () if i is None else ((DIRECT_RESULT, i, outcome),)
