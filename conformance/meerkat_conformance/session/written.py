"""Written scenarios of the session suite: histories the shortest-path search drops.

A failed write leaves the model where it was, so the directed search (which keeps one path per
model state) never follows one with the same call retried; and ``DuplicateReceipt`` stands for
the model's ``BoundaryCommitFails``, whose own path the search finds first. Each scenario here
is a fixed run of harness actions replayed in lockstep like a directed one:

* ``duplicate-receipt-then-crash``: a direct run whose boundary receipt is already stored:
  the store refuses the second receipt, the run's input is requeued, and a crash recovers it;
* ``failed-retire-retried-then-crash``: a retire whose lifecycle commit fails, retried, then a
  crash: the retried commit writes every row the failed one changed in memory and gave back.
"""

from __future__ import annotations

from meerkat_model.session.actions import Accept, AcceptAndRun, Crash, Register, Retire, WriteFails

from meerkat_conformance.lockstep.scenarios import Scenario
from meerkat_conformance.session.harness_actions import ATTACH, DUPLICATE_RECEIPT


def _queued(i: int) -> Accept:
    """Input ``i`` accepted into lane 0, no idempotency or supersession key, kept durable."""
    return Accept(i=i, lane=0, idem=-1, skey=-1, coalesce=0, ephemeral=0)


WRITTEN: tuple[Scenario, ...] = (
    Scenario("duplicate-receipt-then-crash", (Register(), AcceptAndRun(i=0, idem=-1), DUPLICATE_RECEIPT, Crash())),
    Scenario(
        "failed-retire-retried-then-crash",
        (Register(), _queued(0), ATTACH, _queued(1), WriteFails(Retire()), Retire(), Crash()),
    ),
)
"""The written scenarios (any session bounds with two inputs)."""
