"""Which rule of a lockstep state machine makes each declared transition of the model fire.

Each adapter package keeps one :class:`HarnessRule` per ``TransitionDecl`` name
(``session.harness_rules``, ``ops.harness_rules``); a test checks that the table covers
exactly the model's declarations and that every named rule is a Hypothesis rule of the
lockstep machine. The exhaustive replay (``replay.walk``) drives every edge of the model's
graph besides, whatever rule it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HarnessRule:
    """``stateful_rule``: the method of the lockstep machine whose steps fire ``rule``, or
    ``None`` when no step fires it directly — the runtime performs it on its own (reported
    through ``RuntimeAdapter.autonomous``) or it cannot happen in the runtime; ``note`` then
    says which."""

    rule: str
    stateful_rule: str | None
    note: str = ""
