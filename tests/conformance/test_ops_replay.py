"""Exhaustive replay of the operation registry model's reachable graph (tiny profile) against
the runtime, and a planted rollback bug that the replay catches."""

from __future__ import annotations

from typing import Any

import pytest
from meerkat_conformance.lockstep.disks import make_disk
from meerkat_conformance.lockstep.trace import Disagreement
from meerkat_conformance.ops.adapter import OpsAdapter
from meerkat_conformance.replay.walk import replay_graph
from meerkat_model.catalog import MACHINES, PROFILES
from meerkat_model.ops.machine import OpsMachine
from meerkat_model.verifier import explore
from meerkat_runtime.ops.plan import OpsPlan
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.vocab.errors import PersistenceFailed


@pytest.fixture(scope="module")
def tiny() -> tuple[OpsMachine, Any]:
    machine = MACHINES["ops"](PROFILES["tiny"]["ops"])
    assert isinstance(machine, OpsMachine)
    return machine, explore(machine).graph()


def test_every_edge_of_the_tiny_graph_is_exercised_against_the_runtime(tiny: tuple[OpsMachine, Any]) -> None:
    machine, graph = tiny
    result = replay_graph(machine, graph, lambda: OpsAdapter(machine, make_disk("memory")))
    assert result.complete
    assert result.edges_covered == graph.number_of_edges() == result.edges_total
    assert result.transitions_in_graph <= result.tally.covered
    assert result.tally.crashes > 0
    assert result.tally.faults > 0
    assert result.probes > 0
    assert result.tally.disagreements == 0


class _NoRollback(OpsLifecycleRegistry):
    """Planted bug: a failed durable write leaves the transition applied in memory."""

    def _commit(self, plan: OpsPlan) -> None:
        try:
            super()._commit(plan)
        except PersistenceFailed:
            with self._lock:
                self._core.apply(plan, written=False)  # BUG: applied although the write failed
            raise


def test_replay_catches_a_missing_rollback(tiny: tuple[OpsMachine, Any]) -> None:
    machine, graph = tiny
    with pytest.raises(Disagreement) as info:
        replay_graph(machine, graph, lambda: OpsAdapter(machine, make_disk("memory"), registry_class=_NoRollback))
    text = str(info.value)
    assert "[write fails]" in text
    assert "store write fails" in text
