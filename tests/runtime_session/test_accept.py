"""Accepting inputs: outcomes, idempotency, supersession, lanes and durable-before-ack."""

from __future__ import annotations

import pytest
from meerkat_runtime.session.completion import Abandoned as AbandonedOutcome
from meerkat_runtime.session.inputs import (
    HandlingMode,
    PeerResponseStatus,
    continuation,
    external_event,
    peer_message,
    peer_response,
)
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Accepted, Deduplicated, Rejected
from meerkat_runtime.session.row_codec import decode_record
from meerkat_runtime.vocab.errors import NotReady, RuntimeDestroyed, SessionNotFound, ValidationFailed
from meerkat_runtime.vocab.inputs import Coalesced, Durability, Superseded
from meerkat_runtime.vocab.runtime import RuntimeState

from tests.runtime_session.helpers import S, make_prompt, persistent, run, stored_rows, view_of


def test_ephemeral_accept_and_query() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        await m.register_session("s")
        item = make_prompt("hello")
        outcome = await m.accept_input("s", item)
        assert outcome == Accepted(item.header.id, S.QUEUED)
        assert outcome.is_accepted
        assert await m.runtime_state("s") is RuntimeState.IDLE
        assert await m.list_active_inputs("s") == [item.header.id]
        view = await view_of(m, item)
        assert view.current_state is S.QUEUED and view.lane == "queue"
        assert [(h.from_state, h.to_state) for h in view.history] == [(None, S.ACCEPTED), (S.ACCEPTED, S.QUEUED)]

    run(body())


def test_unregistered_session_errors_and_unregister_forgets() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        with pytest.raises(SessionNotFound) as err:
            await m.accept_input("nope", make_prompt())
        assert err.value.kind == "session_not_found"
        await m.register_session("s")
        assert await m.contains_session("s")
        await m.unregister_session("s")
        assert not await m.contains_session("s")
        with pytest.raises(SessionNotFound):
            await m.runtime_state("s")

    run(body())


def test_persistent_accept_is_durable_before_ack() -> None:
    async def body() -> None:
        m, store = persistent()
        await m.register_session("s")
        item = make_prompt("durable")
        assert isinstance(await m.accept_input("s", item), Accepted)
        rows = stored_rows(store, "s")
        assert [r.input_id for r in rows] == [item.header.id]
        record = decode_record(rows[0].payload)
        assert record.phase is S.QUEUED
        assert record.input == item

    run(body())


def test_duplicate_idempotency_key_is_deduplicated_and_not_persisted() -> None:
    async def body() -> None:
        m, store = persistent()
        await m.register_session("s")
        first = make_prompt("a", idempotency_key="k")
        second = make_prompt("b", idempotency_key="k")
        await m.accept_input("s", first)
        outcome = await m.accept_input("s", second)
        assert outcome == Deduplicated(second.header.id, first.header.id)
        assert len(stored_rows(store, "s")) == 1
        assert await m.input_state("s", second.header.id) is None

    run(body())


def test_invalid_inputs_are_rejected_and_nothing_is_stored() -> None:
    async def body() -> None:
        m, store = persistent()
        await m.register_session("s")
        derived_prompt = make_prompt("x", durability=Durability.DERIVED)
        outcome = await m.accept_input("s", derived_prompt)
        assert isinstance(outcome, Rejected) and "derived" in outcome.reason
        progress_with_mode = peer_response("p", "req", PeerResponseStatus.PROGRESS, mode=HandlingMode.STEER)
        assert isinstance(await m.accept_input("s", progress_with_mode), Rejected)
        empty_request = peer_response("p", "", PeerResponseStatus.TERMINAL)
        assert isinstance(await m.accept_input("s", empty_request), Rejected)
        terminal_with_mode = peer_response("p", "req", PeerResponseStatus.TERMINAL, mode=HandlingMode.STEER)
        assert isinstance(await m.accept_input("s", terminal_with_mode), Accepted)
        steer_peer = peer_message("p", "hi", handling_mode=HandlingMode.STEER)
        assert isinstance(await m.accept_input("s", steer_peer), Accepted)
        assert len(stored_rows(store, "s")) == 2
        with pytest.raises(ValidationFailed):
            await m.accept_input_with_completion("s", derived_prompt)

    run(body())


def test_invalid_duplicate_is_rejected_not_deduplicated() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        await m.register_session("s")
        await m.accept_input("s", make_prompt(idempotency_key="k"))
        bad = make_prompt(idempotency_key="k", durability=Durability.DERIVED)
        assert isinstance(await m.accept_input("s", bad), Rejected)

    run(body())


def test_steer_inputs_wait_in_the_steer_lane_and_continuations_steer() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        await m.register_session("s")
        q = make_prompt("queued")
        st = make_prompt("steer", handling_mode=HandlingMode.STEER)
        c = continuation("background op completed")
        for item in (q, st, c):
            await m.accept_input("s", item)
        view = await m.session_view("s")
        assert view.queue == (q.header.id,)
        assert view.steer == (st.header.id, c.header.id)

    run(body())


def test_supersession_replaces_a_queued_input_of_the_same_kind_and_key() -> None:
    async def body() -> None:
        m, store = persistent()
        await m.register_session("s")
        old = external_event("tick", "1", supersession_key="clock")
        other_kind = make_prompt("p", supersession_key="clock")
        new = external_event("tick", "2", supersession_key="clock")
        await m.accept_input("s", old)
        _, handle = await m.accept_input_with_completion("s", other_kind)
        assert handle is not None
        await m.accept_input("s", new)
        old_view = await view_of(m, old)
        assert old_view.current_state is S.SUPERSEDED
        assert old_view.terminal_outcome == Superseded(new.header.id)
        view = await m.session_view("s")
        assert view.queue == (other_kind.header.id, new.header.id)
        stored = {r.input_id: decode_record(r.payload).phase for r in stored_rows(store, "s")}
        assert stored[old.header.id] is S.SUPERSEDED
        assert not handle.done()

    run(body())


def test_coalescing_records_the_aggregate_and_resolves_the_waiter() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        await m.register_session("s")
        old = external_event("tick", "1", supersession_key="clock")
        new = external_event("tick", "2", supersession_key="clock", coalesce=True)
        _, handle = await m.accept_input_with_completion("s", old)
        await m.accept_input("s", new)
        view = await view_of(m, old)
        assert view.terminal_outcome == Coalesced(new.header.id)
        assert handle is not None and await handle.wait() == AbandonedOutcome("coalesced")

    run(body())


def test_retired_runtime_rejects_input_and_destroyed_says_destroyed() -> None:
    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        await m.register_session("s")
        await m.retire_runtime("s")
        with pytest.raises(NotReady) as not_ready:
            await m.accept_input("s", make_prompt())
        assert not_ready.value.state == "retired"
        await m.destroy_runtime("s")
        with pytest.raises(RuntimeDestroyed) as destroyed:
            await m.accept_input("s", make_prompt())
        assert destroyed.value.kind == "destroyed"

    run(body())


def test_ephemeral_durability_inputs_are_still_written() -> None:
    async def body() -> None:
        m, store = persistent()
        await m.register_session("s")
        await m.accept_input("s", make_prompt(durability=Durability.EPHEMERAL))
        assert len(stored_rows(store, "s")) == 1

    run(body())
