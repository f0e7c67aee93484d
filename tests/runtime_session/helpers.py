"""Shared helpers for the session runtime tests."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from meerkat_conformance.trace.check import check_trace
from meerkat_runtime.events.jsonl import EventLog
from meerkat_runtime.session import row_codec
from meerkat_runtime.session.inputs import Input, PromptInput, prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Deduplicated
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.session.views import InputStateView
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.vocab.ids import InputId, canonical_runtime_id
from meerkat_runtime.vocab.inputs import InputLifecycleState

T = TypeVar("T")

S = InputLifecycleState
"""The input phases, under the short name the session tests use."""


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one test coroutine on a fresh event loop (with a generous safety timeout)."""

    async def guarded() -> T:
        async with asyncio.timeout(20):
            return await coro

    return asyncio.run(guarded())


def make_prompt(text: str = "hello", **kwargs: Any) -> PromptInput:
    return prompt(text, **kwargs)


def stored_rows(store: InMemoryRuntimeStore | Any, session_id: str) -> list[InputRow]:
    rows: list[InputRow] = store.load_input_states(canonical_runtime_id(session_id))
    return rows


SAME_WORKER = OwnershipConfig(owner_id="worker-1")
"""Ownership of the machines these tests restart on one store: each new machine is the same worker
restarted (a stable owner id), so it takes its sessions back at once instead of waiting for the
previous incarnation's lease to expire."""


def persistent(store: Any = None, **kwargs: Any) -> tuple[MeerkatMachine, Any]:
    store = store if store is not None else InMemoryRuntimeStore()
    kwargs.setdefault("ownership", SAME_WORKER)
    return MeerkatMachine.persistent(store, **kwargs), store


def logged(store: Any, log_dir: Path, **kwargs: Any) -> tuple[MeerkatMachine, EventLog]:
    """A :func:`persistent` machine on ``store`` whose events go to a new log in ``log_dir``."""
    m, _ = persistent(store, **kwargs)
    log = EventLog(log_dir)
    m.events.subscribe(log)
    return m, log


def replays(log_dir: Path, *rules: str) -> None:
    """The event log in ``log_dir`` replays through the model, each of ``rules`` taken at least once."""
    verdict = check_trace([log_dir])
    assert verdict.rejection is None, (verdict.rejection.at.where, verdict.rejection.reason)
    assert verdict.ok
    for rule in rules:
        assert verdict.rules.get(rule, 0) >= 1, rule


async def registered_queue(path: Path, session_id: str) -> list[str]:
    """Register ``session_id`` on the SQLite file at ``path`` (nothing else) and return its
    queue as the reopened machine recovered it."""
    machine = MeerkatMachine.persistent(path)
    await machine.register_session(session_id)
    queue = [str(i) for i in (await machine.session_view(session_id)).queue]
    await machine.close()
    return queue


async def registered_input_count(store: Any, session_id: str, **options: Any) -> int:
    """Register ``session_id`` on ``store`` (nothing else) and return how many inputs it
    recovered; the machine and ``store`` are closed after, whatever happened."""
    machine = MeerkatMachine.persistent(store, **options)
    try:
        await machine.register_session(session_id)
        return len(await machine.input_states(session_id))
    finally:
        await machine.close()
        store.close()


async def recover_and_run(store: Any, *old_keys: str, **options: Any) -> tuple[list[InputId], list[InputId]]:
    """Register session ``old`` on ``store``, check that an input under each of ``old_keys`` is
    deduplicated, then run it to the end (every input Consumed); returns the queue at registration
    and the inputs the executor ran, in order."""
    machine = MeerkatMachine.persistent(store, **options)
    await machine.register_session("old")
    for key in old_keys:
        assert isinstance(await machine.accept_input("old", make_prompt("again", idempotency_key=key)), Deduplicated)
    queue = list((await machine.session_view("old")).queue)
    executor = ScriptedExecutor()
    await machine.register_session_with_executor("old", executor)
    await machine.settle("old")
    states = {v.input_id: v.current_state for v in await machine.input_states("old")}
    assert all(state is InputLifecycleState.CONSUMED for state in states.values()), states
    await machine.close()
    return queue, [ids[0] for _, ids in executor.applied]


async def view_of(m: MeerkatMachine, item: Input, session_id: str = "s") -> InputStateView:
    """The state view of ``item``, which the session must know."""
    view = await m.input_state(session_id, item.header.id)
    assert view is not None
    return view


async def settled_view(m: MeerkatMachine, item: Input, session_id: str = "s") -> InputStateView:
    """Accept ``item``, wait until the session's loop has settled, and return the item's view."""
    await m.accept_input(session_id, item)
    await m.settle(session_id)
    return await view_of(m, item, session_id)


async def queue_behind_run(
    m: MeerkatMachine, ex: ScriptedExecutor, running: Input, queued: Input, session_id: str = "s"
) -> None:
    """Accept ``running`` and wait until ``ex`` parks on its run, then accept ``queued`` behind it."""
    await m.accept_input(session_id, running)
    await ex.wait_parked()
    await m.accept_input(session_id, queued)


_DECODE_INPUT = row_codec.input_from_json


def lossy_input_from_json(doc: Any) -> Any:
    """The row codec's input decoder, losing data: a prompt's text comes back upper-cased (a
    codec fault to patch in for ``row_codec.input_from_json``)."""
    item = _DECODE_INPUT(doc)
    return dataclasses.replace(item, text=item.text.upper())


Snapshot = list[tuple[str, InputLifecycleState, int]]


async def snapshot(machine: MeerkatMachine, session: str = "s") -> Snapshot:
    """Each input of ``session``: its id, phase and attempts, in admission order."""
    return [(str(v.input_id), v.current_state, v.attempts) for v in await machine.input_states(session)]


async def reopened(path: Path, session: str = "s") -> Snapshot:
    """The inputs of ``session`` as a new machine on the file at ``path`` reads them."""
    async with MeerkatMachine.persistent(path, ownership=SAME_WORKER) as machine:
        await machine.register_session(session)
        return await snapshot(machine, session)
