"""The final hand-off of the parallel search: a worker leaves out of its state list the states the
hub sent it, and the hub puts back the very objects it sent, in the worker's order."""

from __future__ import annotations

import pickle

import pytest
from meerkat_model.catalog import PROFILES
from meerkat_model.session import SessionMachine
from meerkat_model.verifier.search import restore_states

from tests.verifier.test_partition_key import in_process


def test_a_worker_sends_only_the_states_the_hub_did_not_send_it() -> None:
    machine = SessionMachine(PROFILES["small"]["session"])
    parts, _ = in_process([machine, machine])
    hub, worker = parts
    full = worker.final_lists()[0]
    own = pickle.loads(pickle.dumps(worker.final_lists(omit=0)[0]))  # as the hub receives it
    received = worker.inbox[0]
    assert received and len(own) == len(full) - len(set(received))
    restored = restore_states(own, len(full), received, hub.sent_states[1])
    assert restored == full
    # the states the hub sent come back as the hub's own objects: one copy of each in the hub
    kept = {id(s) for s in hub.sent_states[1]}
    assert sum(id(s) in kept for s in restored) == len(set(received))


def test_restoring_with_the_wrong_slot_table_is_an_error() -> None:
    assert restore_states(["a", "c"], 3, [1], ["x"]) == ["a", "x", "c"]
    with pytest.raises(ValueError, match="3 own states for 2 indexes not received"):
        restore_states(["a", "b", "c"], 3, [1], ["x"])
    with pytest.raises(ValueError, match="1 own states for 2 indexes not received"):
        restore_states(["a"], 3, [1], ["x"])
