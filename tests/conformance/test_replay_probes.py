"""The ops replay probes every call the model refuses at each node it reaches, although the
graph it walks is explored without them (the replay profiles' ``probes`` bound is 0): a runtime
that accepts a call the model refuses (a second completion, a second ``peer_ready``) or refuses
it with another error (``wait_all`` checking for unknown ids before the active barrier) is found
on the tiny graph. Each bug is planted in the runtime's registry core for one test only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from meerkat_conformance.lockstep.disks import make_disk
from meerkat_conformance.lockstep.trace import Disagreement
from meerkat_conformance.ops.adapter import OpsAdapter
from meerkat_conformance.replay.walk import replay_graph
from meerkat_model.catalog import MACHINES, PROFILES
from meerkat_model.machine import Bounds
from meerkat_model.ops.machine import OpsMachine
from meerkat_model.verifier import explore
from meerkat_runtime.ops.core import OpsCore
from meerkat_runtime.vocab.errors import NotFound
from meerkat_runtime.vocab.operation import Completed, OperationStatus

Graph = tuple[OpsMachine, Any]


@pytest.fixture(scope="module")
def tiny() -> Graph:
    machine = MACHINES["ops"](PROFILES["tiny"]["ops"])
    assert isinstance(machine, OpsMachine)
    assert not machine.bounds.probes  # the graph holds no refused calls: the replay adds them
    return machine, explore(machine).graph()


@pytest.fixture(scope="module")
def two_ids() -> Graph:
    """Two ids of one kind, without crashes, watchers or progress: a barrier on one operation
    while the other id is unknown."""
    off = {"kinds": 1, "crash": 0, "watchers": 0, "progress": 0}
    machine = MACHINES["ops"](Bounds({**PROFILES["tiny"]["ops"].values, **off, "ids": 2, "sequences": 2}))
    assert isinstance(machine, OpsMachine)
    return machine, explore(machine).graph()


def _replay(graph: Graph) -> None:
    machine, g = graph
    result = replay_graph(machine, g, lambda: OpsAdapter(machine, make_disk("memory")))
    assert result.complete and result.tally.disagreements == 0


def _complete_twice(original: Callable[..., Any]) -> Callable[..., Any]:
    def planted(self: OpsCore, operation_id: str, result: Any) -> Any:
        rec = self.ops.get(operation_id)
        if rec is not None and rec.status is OperationStatus.COMPLETED:  # BUG: completes again
            return self._plan_terminals("complete_operation", operation_id, [(rec, Completed(result))])
        return original(self, operation_id, result)

    return planted


def _peer_ready_twice(original: Callable[..., Any]) -> Callable[..., Any]:
    def planted(self: OpsCore, operation_id: str, handle: Any) -> Any:
        rec = self.ops.get(operation_id)
        if rec is not None:
            rec.peer_ready = False  # BUG: forgets an earlier peer_ready, so a second is accepted
        return original(self, operation_id, handle)

    return planted


def _wait_all_not_found_first(original: Callable[..., Any]) -> Callable[..., Any]:
    def planted(self: OpsCore, ids: tuple[str, ...]) -> Any:
        if self.barrier is not None and len(set(ids)) == len(ids):
            for oid in ids:  # BUG: NotFound checked before WaitAlreadyActive
                if oid not in self.ops:
                    raise NotFound(oid)
        return original(self, ids)

    return planted


PLANTED = {
    "complete_operation": (_complete_twice, "tiny"),
    "peer_ready": (_peer_ready_twice, "tiny"),
    "wait_all": (_wait_all_not_found_first, "two_ids"),
}


def test_the_unaltered_runtime_passes_the_probed_replay(two_ids: Graph) -> None:
    """(The tiny graph's probed replay of the unaltered runtime is ``test_ops_replay``'s.)"""
    _replay(two_ids)


@pytest.mark.parametrize("method", sorted(PLANTED))
def test_the_replay_finds_a_call_the_runtime_accepts_or_refuses_unlike_the_model(
    method: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    plant, graph = PLANTED[method]
    monkeypatch.setattr(OpsCore, method, plant(getattr(OpsCore, method)))
    with pytest.raises(Disagreement) as caught:
        _replay(request.getfixturevalue(graph))
    assert "returned different results" in str(caught.value)
    assert method in caught.value.trace.steps[-1].label
