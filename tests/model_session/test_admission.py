"""Accepting inputs: durable before acknowledgement, dedup, supersession, refusal order."""

from __future__ import annotations

from meerkat_model.session.actions import (
    Accept,
    AcceptInvalid,
    Crash,
    Destroy,
    ExecutorSucceeded,
    Register,
    Retire,
    StartRun,
    Stop,
    WriteFails,
)
from meerkat_model.session.state import Waiter
from meerkat_model.vocab import rejections
from meerkat_model.vocab.statuses import InputPhase, RuntimePhase

from .helpers import NO, STEER, accept, attached, machine, phase, registered, rejected, run, stepped, stored_phase


def test_accepted_input_is_stored_before_it_is_acknowledged() -> None:
    m = machine()
    result = stepped(m, registered(m), accept(0))
    assert result.outputs[0] == ("accepted", 0)
    assert stored_phase(result.state, 0) is InputPhase.QUEUED
    assert result.state.durable.queue == (0,)
    assert result.state.waiters[0] is Waiter.PENDING
    assert m.observe(result.state)["queue"] == [0]


def test_failed_accept_write_changes_nothing_and_a_retry_succeeds() -> None:
    m = machine()
    state = registered(m)
    failure = rejected(m, state, WriteFails(accept(0)))
    assert failure.kind == rejections.DURABLE_WRITE_FAILED
    retried = stepped(m, state, accept(0))
    assert phase(retried.state, 0) is InputPhase.QUEUED


def test_duplicate_key_is_deduplicated_and_not_stored() -> None:
    m = machine()
    state = run(m, registered(m), accept(0, idem=1))
    result = stepped(m, state, accept(1, idem=1))
    assert result.transition == "deduplicate"
    assert result.outputs == (("deduplicated", 1, 0, True),)
    assert result.state == state
    assert result.state.durable.rows[1] is None


def test_dedup_against_a_terminal_input_gives_no_handle() -> None:
    m = machine()
    state = run(m, attached(m), accept(0, idem=0), StartRun(), ExecutorSucceeded(1))
    result = stepped(m, state, accept(1, idem=0))
    assert result.outputs == (("deduplicated", 1, 0, False),)


def test_idempotency_key_survives_a_crash() -> None:
    m = machine()
    state = run(m, registered(m), accept(0, idem=0), Crash(), Register())
    assert stepped(m, state, accept(1, idem=0)).transition == "deduplicate"


def test_ephemeral_input_is_dropped_at_recovery_and_frees_its_key() -> None:
    m = machine()
    state = run(m, registered(m), accept(0, idem=0, eph=1), Crash(), Register())
    assert state.memory is not None and state.memory.rows[0] is None
    assert stepped(m, state, accept(1, idem=0)).transition == "accept"


def test_newer_input_supersedes_the_queued_one_with_the_same_key() -> None:
    m = machine()
    state = run(m, registered(m), accept(0, skey=0))
    result = stepped(m, state, accept(1, skey=0))
    assert result.transition == "accept_superseding"
    after = result.state
    assert phase(after, 0) is InputPhase.SUPERSEDED
    assert after.memory is not None and after.memory.rows[0] is not None and after.memory.rows[0].ref == 1
    assert after.memory.queue == (1,)
    assert after.waiters[0] is Waiter.ABANDONED_SUPERSEDED
    assert stored_phase(after, 0) is InputPhase.SUPERSEDED
    assert after.durable.queue == (1,)


def test_coalescing_input_becomes_the_aggregate_across_lanes() -> None:
    m = machine()
    state = run(m, registered(m), accept(0, lane=STEER, skey=0))
    result = stepped(m, state, accept(1, skey=0, coalesce=1))
    assert result.transition == "accept_coalescing"
    assert phase(result.state, 0) is InputPhase.COALESCED
    assert result.state.waiters[0] is Waiter.ABANDONED_COALESCED
    assert result.state.memory is not None and result.state.memory.steer == ()


def test_staged_input_is_not_superseded() -> None:
    m = machine()
    state = run(m, attached(m), accept(0, skey=0), StartRun())
    result = stepped(m, state, accept(1, skey=0))
    assert result.transition == "accept"
    assert phase(result.state, 0) is InputPhase.STAGED


def test_invalid_input_is_rejected_as_an_outcome_and_nothing_is_stored() -> None:
    m = machine()
    state = registered(m)
    result = stepped(m, state, AcceptInvalid(0))
    assert result.state == state
    assert result.outputs[0][0] == "rejected"


def test_refusals_in_check_order() -> None:
    m = machine()
    assert rejected(m, m.initial_state(), accept(0)).kind == rejections.SESSION_NOT_FOUND
    retired = run(m, registered(m), Retire())
    assert rejected(m, retired, accept(0, idem=0)).kind == rejections.NOT_READY
    stopped = run(m, registered(m), Stop())
    assert rejected(m, stopped, accept(0)).kind == rejections.NOT_READY
    destroyed = run(m, registered(m), Destroy())
    assert rejected(m, destroyed, AcceptInvalid(0)).kind == rejections.DESTROYED


def test_accept_while_running_queues_behind_the_run() -> None:
    m = machine()
    state = run(m, attached(m), accept(0), StartRun(), accept(1))
    assert state.memory is not None
    assert state.memory.phase is RuntimePhase.RUNNING
    assert state.memory.queue == (1,)
    assert state.durable.queue == (0, 1)


def test_ids_are_used_once() -> None:
    m = machine()
    state = run(m, registered(m), accept(0))
    assert rejected(m, state, accept(0, idem=NO)).kind == rejections.VALIDATION_FAILED


def test_anything_but_a_well_formed_session_action_is_refused() -> None:
    m = machine()
    state = registered(m)
    for bad in (("accept", 0, 0, -1, -1, 0, 0), Accept(0, 7, -1, -1, 0, 0), WriteFails(StartRun()), "register"):
        refused = rejected(m, state, bad)  # type: ignore[arg-type]
        assert refused.kind == rejections.VALIDATION_FAILED
    assert "has no store write" in rejected(m, state, WriteFails(StartRun())).detail
