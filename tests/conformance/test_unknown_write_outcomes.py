"""Writes whose outcome the runtime cannot know while the store can still be read: the write
landed (the call must succeed, as the model's plain step) or it did not (the call must fail and
change nothing, as the model's failing write). A runtime that acknowledges a write its
read-back found missing is found by a short lockstep and by the session search."""

from __future__ import annotations

import pytest
from meerkat_conformance.lockstep.disks import make_disk
from meerkat_conformance.lockstep.driver import Lockstep
from meerkat_conformance.lockstep.trace import Disagreement
from meerkat_conformance.session.adapter import SessionAdapter
from meerkat_conformance.session.harness_actions import ATTACH, UnknownWrite
from meerkat_conformance.session.stateful import HYPOTHESIS_BOUNDS
from meerkat_model.session.actions import Accept, Recycle, Retire, SessionAction, Stop
from meerkat_model.session.machine import SessionMachine
from meerkat_model.session.state import NO_KEY
from meerkat_runtime.session.machine import MeerkatMachine

from tests.conformance.session_bugs import UnlandedWriteAcknowledged
from tests.conformance.test_session_planted_bugs import _search

CALLS: list[SessionAction] = [Accept(0, 0, NO_KEY, NO_KEY, 0, 0), Retire(), Stop(), Recycle()]


def _lockstep(runtime_class: type[MeerkatMachine], call: SessionAction, landed: int) -> Lockstep:
    machine = SessionMachine(HYPOTHESIS_BOUNDS)
    lock = Lockstep(machine, SessionAdapter(machine, make_disk("memory"), runtime_class=runtime_class))
    try:
        lock.apply(ATTACH)
        lock.apply(UnknownWrite(call, landed))
    finally:
        lock.close()
    return lock


@pytest.mark.parametrize("landed", [0, 1])
@pytest.mark.parametrize("call", CALLS, ids=lambda c: type(c).__name__)
def test_the_runtime_reads_an_unknown_outcome_back_and_agrees_with_the_model(call: SessionAction, landed: int) -> None:
    lock = _lockstep(MeerkatMachine, call, landed)
    step = lock.trace.steps[1]  # after the attach (a landed accept may be followed by a run start)
    assert step.agree and "outcome unknown" in step.note
    if landed:
        assert step.model.brief().startswith("ok")


def test_a_lost_write_acknowledged_anyway_is_found_by_a_short_lockstep() -> None:
    with pytest.raises(Disagreement) as caught:
        _lockstep(UnlandedWriteAcknowledged, Retire(), 0)
    step = caught.value.trace.steps[-1]
    assert not step.agree
    assert step.model.brief().startswith("error durable_write_failed") and step.runtime.brief().startswith("ok")
    assert "did not land" in step.note


def test_a_lost_write_acknowledged_anyway_is_found_by_the_search() -> None:
    with pytest.raises(Disagreement) as caught:
        _search(UnlandedWriteAcknowledged)
    assert "did not land" in caught.value.trace.steps[-1].note
