"""Written scenarios of the ops suite: states the shortest-path search never picks.

The directed search (:mod:`~meerkat_conformance.lockstep.scenarios`) tells model states apart,
so it cannot prefer a history the model does not see (the runtime's journal compacted into a
snapshot, then a crash), and it stops before the long paths (a barrier pinning more completed
operations than retention keeps needs four ids and eleven steps; a full completion feed needs
over a thousand completions). Each scenario here is a fixed run of harness actions replayed in
lockstep like a directed one, on a model with :data:`WRITTEN_BOUNDS`:

* ``barrier-pins-over-retention``: a barrier pins three completed operations (one over
  ``max_completed``), then is cancelled, a collect is written and the process crashes: the
  pins hold, cancelling releases them, the journal record carries the evictions cancelling
  made without a write of their own;
* ``crash-with-pins-over-retention``: the same pins, then a crash: recovery applies retention;
* ``crash-after-compaction``: a snapshot, a cursor move and an appended record, a crash, the
  compaction after recovery, a second crash: the replayed record restores the cursor, and
  the compaction leaves no stale record behind;
* ``full-completion-feed``: more completions than the feed holds: it keeps exactly its capacity.
"""

from __future__ import annotations

from collections.abc import Hashable

from meerkat_model.ops.actions import (
    AbortProvisioning,
    CollectCompleted,
    CompleteOperation,
    Crash,
    DropWait,
    ProvisioningSucceeded,
    RegisterOperation,
    WaitAll,
)
from meerkat_model.ops.bounds import OpsBounds
from meerkat_model.vocab.statuses import OpKind

from meerkat_conformance.lockstep.scenarios import Scenario
from meerkat_conformance.ops.harness_actions import AdvanceCursor

WRITTEN_BOUNDS = {"ids": 4}
"""Bounds the written scenarios widen the lockstep model's to (a fourth id keeps a barrier
pending while three completed operations are pinned)."""

_KIND = int(OpKind.BACKGROUND_TOOL_OP)
_RESULT = "r1"


def _finish(op: int) -> tuple[Hashable, ...]:
    """Register operation ``op`` and complete it."""
    return (RegisterOperation(op, _KIND), ProvisioningSucceeded(op), CompleteOperation(op, _RESULT))


def _pins_over_retention() -> tuple[Hashable, ...]:
    """Two completed operations, then a barrier on them and two active ones, one of which
    completes: three completed operations pinned, one over ``max_completed`` (2)."""
    return (
        *_finish(0),
        *_finish(1),
        RegisterOperation(2, _KIND),
        RegisterOperation(3, _KIND),
        ProvisioningSucceeded(2),
        WaitAll((0, 1, 2, 3)),
        CompleteOperation(2, _RESULT),
    )


def _full_feed(capacity: int) -> tuple[Hashable, ...]:
    """``capacity + 2`` operations registered and aborted in turn over three ids (retention
    frees each id before it comes round again)."""
    path: list[Hashable] = []
    for n in range(capacity + 2):
        op = n % 3
        path += [RegisterOperation(op, _KIND), AbortProvisioning(op, None)]
    return tuple(path)


def written_scenarios(bounds: OpsBounds) -> tuple[Scenario, ...]:
    """The written scenarios for a model with ``bounds`` (``max_completed`` 2, at least four ids)."""
    return (
        Scenario("barrier-pins-over-retention", (*_pins_over_retention(), DropWait(), CollectCompleted(), Crash())),
        Scenario("crash-with-pins-over-retention", (*_pins_over_retention(), Crash())),
        Scenario(
            "crash-after-compaction",
            (*_finish(0), AdvanceCursor(0, 3), *_finish(1), Crash(), *_finish(2), Crash()),
        ),
        Scenario("full-completion-feed", _full_feed(bounds.feed_capacity)),
    )
