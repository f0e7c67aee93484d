"""Event delivery outside the runtime's locks: a subscriber may call the operation registry
(re-entrancy), a subscriber blocked in one thread holds up no other thread's commit, and every
subscriber still sees each runtime's events in ``seq`` order (the async stream included)."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable

from meerkat_runtime.events.bus import EventBus
from meerkat_runtime.events.event import LifecycleEvent
from meerkat_runtime.ops.events import OpsEventSink
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.vocab.ids import OperationId
from meerkat_runtime.vocab.operation import OperationKind, OperationResult, OperationSpec

from tests.runtime_session.helpers import make_prompt, persistent, run

DEADLOCK_GUARD_S = 10.0
"""How long a test waits for a call that must return (it never takes this long unless stuck)."""


def _registry(bus: EventBus, session_id: str = "s") -> OpsLifecycleRegistry:
    registry = OpsLifecycleRegistry(session_id=session_id)
    registry.attach_events(OpsEventSink(bus, session_id, f"rt:session:{session_id}", lambda: None))
    return registry


def _spec(operation_id: str, session_id: str = "s") -> OperationSpec:
    return OperationSpec(OperationId(operation_id), OperationKind.BACKGROUND_TOOL_OP, session_id, operation_id)


def _in_thread(call: Callable[[], None]) -> threading.Thread:
    """Run ``call`` in a daemon thread (a deadlocked one does not keep the test process alive)."""
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread


def test_a_subscriber_may_call_the_registry_whose_event_it_is_given() -> None:
    bus = EventBus()
    registry = _registry(bus)
    got: list[LifecycleEvent] = []

    def follow_up(event: LifecycleEvent) -> None:
        got.append(event)
        if event.rule == "complete_operation":
            registry.register_operation(_spec("op-2"))  # re-enters the registry that published

    bus.subscribe(follow_up)
    registry.register_operation(_spec("op-1"))
    registry.provisioning_succeeded("op-1")
    worker = _in_thread(lambda: registry.complete_operation("op-1", OperationResult("op-1", "done")))
    worker.join(DEADLOCK_GUARD_S)

    assert not worker.is_alive(), "complete_operation never returned: its subscriber deadlocked on the registry"
    assert [view.id for view in registry.list_operations()] == ["op-1", "op-2"]
    # the re-entrant call's event is delivered after the one whose subscriber caused it
    assert [(e.rule, e.seq) for e in got] == [
        ("register_operation", 1),
        ("provisioning_succeeded", 2),
        ("complete_operation", 3),
        ("register_operation", 4),
    ]


def test_a_blocked_subscriber_holds_up_no_other_threads_commit_and_order_is_kept() -> None:
    bus = EventBus()
    registry = _registry(bus)
    release = threading.Event()
    blocked = threading.Event()
    got: list[tuple[str, int]] = []

    def slow(event: LifecycleEvent) -> None:
        got.append((event.rule, event.seq))
        if event.rule == "complete_operation":
            blocked.set()
            release.wait(DEADLOCK_GUARD_S)

    registry.register_operation(_spec("op-1"))
    registry.provisioning_succeeded("op-1")
    bus.subscribe(slow)
    completing = _in_thread(lambda: registry.complete_operation("op-1", OperationResult("op-1", "done")))
    assert blocked.wait(DEADLOCK_GUARD_S)
    # the same registry and the same bus, from another thread, while the subscriber is blocked
    other = _in_thread(lambda: registry.register_operation(_spec("op-2")))
    other.join(DEADLOCK_GUARD_S)
    other_returned = not other.is_alive()
    delivered_meanwhile = list(got)
    release.set()
    completing.join(DEADLOCK_GUARD_S)

    assert other_returned, "a commit on another thread waited for a blocked subscriber"
    assert delivered_meanwhile == [("complete_operation", 1)]  # op-2's event waits its turn
    assert got == [("complete_operation", 1), ("register_operation", 2)]
    assert not completing.is_alive()


def test_events_emitted_from_several_threads_reach_each_subscriber_in_seq_order() -> None:
    bus = EventBus()
    registries = [_registry(bus, session_id) for session_id in ("a", "b")]
    seen: dict[str, list[int]] = {}
    lock = threading.Lock()

    def record(event: LifecycleEvent) -> None:
        with lock:
            seen.setdefault(event.runtime_id, []).append(event.seq)

    bus.subscribe(record)

    def churn(registry: OpsLifecycleRegistry, worker: int) -> None:
        session_id = registry.session_id
        assert session_id is not None
        for i in range(50):
            operation_id = f"op-{worker}-{i}"
            registry.register_operation(_spec(operation_id, session_id))
            registry.provisioning_succeeded(operation_id)
            registry.complete_operation(operation_id, OperationResult(operation_id, "done"))

    workers = [_in_thread(functools.partial(churn, r, w)) for w, r in enumerate(registries * 2)]
    for worker in workers:
        worker.join(DEADLOCK_GUARD_S)
    assert not any(worker.is_alive() for worker in workers)
    assert seen == {f"rt:session:{s}": list(range(1, 2 * 50 * 3 + 1)) for s in ("a", "b")}


def test_the_stream_keeps_the_bus_order_across_delivering_threads() -> None:
    async def body() -> list[int]:
        bus = EventBus()
        registry = _registry(bus)
        stream = bus.stream()
        # delivered by a worker thread while the loop is busy (handed over to the loop) ...
        worker = _in_thread(lambda: registry.register_operation(_spec("op-1")))
        worker.join(DEADLOCK_GUARD_S)
        # ... then on the loop's own thread, before the loop ran the hand-over
        registry.provisioning_succeeded("op-1")
        seqs: list[int] = []
        async with stream:
            async for event in stream:
                seqs.append(event.seq)
                if len(seqs) == 2:
                    break
        return seqs

    assert asyncio.run(body()) == [1, 2]


def test_a_subscriber_may_call_the_registry_of_a_machines_session() -> None:
    async def body() -> list[str]:
        m, _ = persistent()
        await m.register_session("s")
        registry = await m.ops_lifecycle_registry("s")
        rules: list[str] = []

        def follow_up(event: LifecycleEvent) -> None:
            rules.append(event.rule)
            if event.rule == "complete_operation":
                registry.register_operation(_spec("op-2"))

        m.events.subscribe(follow_up)
        registry.register_operation(_spec("op-1"))
        registry.provisioning_succeeded("op-1")
        worker = _in_thread(lambda: registry.complete_operation("op-1", OperationResult("op-1", "done")))
        await asyncio.to_thread(worker.join, DEADLOCK_GUARD_S)
        assert not worker.is_alive(), "complete_operation never returned"
        await m.accept_input("s", make_prompt("after"))  # the session's events go on
        await m.close()
        return rules

    rules = run(body())
    assert rules[:4] == ["register_operation", "provisioning_succeeded", "complete_operation", "register_operation"]
    assert "accept" in rules and rules[-1] == "unregister"
