"""Action records: typed, hashable, picklable, and equal only to a record of the same class."""

from __future__ import annotations

import pickle
from typing import NamedTuple

import pytest
from meerkat_model.action_record import action_name, action_record, record_name
from meerkat_model.catalog import MACHINES, PROFILES
from meerkat_model.ops import actions as ops
from meerkat_model.session import actions as session
from meerkat_model.verifier import explore


def test_records_of_different_classes_with_equal_fields_differ() -> None:
    assert ops.PeerReady(0) != ops.RequestRetire(0)
    assert not ops.PeerReady(0) == ops.RequestRetire(0)  # noqa: SIM201 - __eq__ itself
    assert len({ops.PeerReady(0), ops.RequestRetire(0), ops.MarkRetired(0), ops.PeerReady(0)}) == 3
    assert len({session.Retire(), session.Stop(), session.Reset(), session.Retire()}) == 3
    assert ops.Crash() != session.Crash()  # the same call name on two machines
    assert ops.WriteFails(ops.PeerReady(0)) != ops.WriteFails(ops.RequestRetire(0))


def test_a_record_never_equals_a_plain_tuple() -> None:
    assert ops.PeerReady(0) != (0,)
    assert session.Register() != ()
    assert ("peer_ready", 0) not in [ops.PeerReady(0)]


def test_records_hash_and_compare_by_value_within_a_class() -> None:
    a, b = ops.CompleteOperation(1, "r1"), ops.CompleteOperation(1, "r1")
    assert a == b and hash(a) == hash(b) and a is not b
    assert {a: "x"}[b] == "x"
    assert ops.CompleteOperation(1, "r1") != ops.CompleteOperation(0, "r1")


def test_records_pickle_to_equal_records() -> None:
    for action in (ops.WriteFails(ops.TerminateOwner("shutdown")), session.Accept(1, 1, 0, -1, 0, 1)):
        copy = pickle.loads(pickle.dumps(action, pickle.HIGHEST_PROTOCOL))
        assert copy == action and type(copy) is type(action) and hash(copy) == hash(action)


def test_call_names() -> None:
    assert action_name(ops.CompleteOperation(0, "r1")) == "complete_operation"
    assert action_name(session.BoundaryCommitFails()) == "boundary_commit_fails"
    assert record_name(ops.WaitAll) == "wait_all"
    with pytest.raises(ValueError, match="not an action record"):
        action_name(("peer_ready", 0))


def test_the_decorator_takes_only_fresh_named_tuples() -> None:
    class Plain:
        pass

    with pytest.raises(TypeError, match="NamedTuple"):
        action_record("plain")(Plain)  # type: ignore[type-var]
    with pytest.raises(TypeError, match="already"):
        action_record("again")(ops.PeerReady)

    @action_record("probe_only")
    class ProbeOnly(NamedTuple):
        op: int

    assert action_name(ProbeOnly(3)) == "probe_only" and ProbeOnly(3) != ops.PeerReady(3)


@pytest.mark.parametrize("name", ["ops", "session"])
def test_every_offered_action_is_a_record_that_survives_pickling(name: str) -> None:
    machine = MACHINES[name](PROFILES["tiny"][name])
    e = explore(machine)
    offered = {a for s in e.state_list for a in machine.actions(s)}
    assert offered
    for action in offered:
        action_name(action)  # raises for anything but a record
        assert pickle.loads(pickle.dumps(action)) == action
