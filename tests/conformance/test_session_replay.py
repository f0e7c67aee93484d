"""Exhaustive replay of the session model's reachable graph (tiny profile) against a
persistent session, with the runtime's own run starts followed as they happen."""

from __future__ import annotations

from meerkat_conformance.lockstep.disks import make_disk
from meerkat_conformance.replay.walk import replay_graph
from meerkat_conformance.session.adapter import SessionAdapter, harness_action
from meerkat_model.catalog import MACHINES, PROFILES
from meerkat_model.session.machine import SessionMachine
from meerkat_model.verifier import explore


def test_the_tiny_session_graph_is_replayed_against_the_runtime() -> None:
    machine = MACHINES["session"](PROFILES["tiny"]["session"])
    assert isinstance(machine, SessionMachine)
    graph = explore(machine).graph()
    result = replay_graph(machine, graph, lambda: SessionAdapter(machine, make_disk("memory")), steer=harness_action)
    assert result.tally.disagreements == 0
    assert result.edges_covered > 0.6 * result.edges_total
    assert {"start_run", "crash", "register"} <= result.tally.covered
    assert result.tally.faults > 0
