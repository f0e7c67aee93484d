"""Lifecycle events: published after the commit, in commit order, with the model's rule names;
subscribers (stream, logging, JSON Lines log with rotation); operation events; the composition
dispatcher's two failure policies; failures on the input's history; the retry policy."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from meerkat_runtime.events.event import LifecycleEvent
from meerkat_runtime.events.jsonl import EventLog
from meerkat_runtime.events.logging_sink import LoggingSubscriber
from meerkat_runtime.ops.registry import OpsLifecycleRegistry
from meerkat_runtime.session.dispatch import CompositionDispatchFailed, CompositionSignal, DispatchFailurePolicy
from meerkat_runtime.session.executor import CoreApplyOutput, ExecutorError, RunPrimitive
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.retry import RetryPolicy
from meerkat_runtime.session.testing import Fail, ScriptedExecutor
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.vocab.errors import DurableWriteFailed, InvalidSetting, NotReady
from meerkat_runtime.vocab.ids import RunId, canonical_runtime_id
from meerkat_runtime.vocab.operation import OperationKind, OperationResult, OperationSpec
from meerkat_runtime.vocab.runtime import RuntimeState

from tests.runtime_session.helpers import make_prompt, persistent, run


def test_every_committed_transition_is_one_event_in_commit_order() -> None:
    async def body() -> list[LifecycleEvent]:
        m, _ = persistent()
        got: list[LifecycleEvent] = []
        m.events.subscribe(got.append)
        await m.register_session_with_executor("s", ScriptedExecutor(Fail("boom")))
        await m.accept_input("s", make_prompt("a", input_id="in-a", idempotency_key="k"))
        await m.settle("s")
        await m.accept_input("s", make_prompt("again", input_id="in-b", idempotency_key="k"))
        await m.stop_runtime("s")
        await m.close()
        return got

    got = run(body())
    assert [e.rule for e in got] == [
        "register",
        "begin_attach",
        "finish_attach",
        "accept",
        "start_run",
        "executor_failed",
        "start_run",
        "executor_succeeded",
        "deduplicate",
        "stop_with_loop",
        "unregister",
    ]
    assert [e.seq for e in got] == list(range(1, len(got) + 1))
    assert all(e.session_id == "s" and e.runtime_id == canonical_runtime_id("s") for e in got)
    failed = got[5]
    assert (failed.before, failed.after) == ("Running", "Attached")
    assert ("input", "in-a", "Staged", "Queued") in [(c.entity, c.id, c.before, c.after) for c in failed.changes]
    assert failed.details["error"] == {"type": "ExecutorError", "message": "boom"}
    assert got[-2].after == "Stopped" and got[-1].after == "Unregistered"


def test_a_failed_write_publishes_nothing() -> None:
    async def body() -> list[str]:
        store = FaultInjectingStore(InMemoryRuntimeStore())
        m, _ = persistent(store)
        got: list[str] = []
        m.events.subscribe(lambda e: got.append(e.rule))
        await m.register_session("s")
        store.fail_next("persist_input_state")
        with pytest.raises(DurableWriteFailed):
            await m.accept_input("s", make_prompt("a"))
        await m.close()
        return got

    assert run(body()) == ["register", "unregister"]


def test_the_async_stream_the_log_and_logging_see_the_same_events(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> list[str]:
        m = MeerkatMachine.ephemeral()
        log = EventLog(tmp_path, max_bytes=600)
        m.events.subscribe(log)
        m.events.subscribe(LoggingSubscriber())
        seen: list[str] = []
        async with m.events.stream() as events:
            await m.register_session_with_executor("s", ScriptedExecutor())
            for n in range(3):
                await m.accept_input("s", make_prompt(f"p{n}"))
            await m.settle("s")
            await m.unregister_session("s")
            while True:
                event = await events.__anext__()
                seen.append(event.rule)
                if event.rule == "unregister":
                    break
        log.close()
        return seen

    with caplog.at_level(logging.INFO, logger="meerkat_runtime.session"):
        seen = run(body())
    assert seen.count("executor_succeeded") == 3
    records = [r for r in caplog.records if r.name == "meerkat_runtime.session"]
    assert [r.meerkat_rule for r in records] == seen  # type: ignore[attr-defined]
    assert records[0].meerkat_event["rule"] == "register"  # type: ignore[attr-defined]
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) > 2 and any(name.endswith(".jsonl.1") for name in files)  # rotated at 600 bytes
    lines = [json.loads(line) for p in tmp_path.iterdir() for line in p.read_text().splitlines()]
    assert sorted(doc["seq"] for doc in lines) == list(range(1, len(seen) + 1))


def _ops_events(steps: Callable[[OpsLifecycleRegistry], None]) -> list[tuple[str, str, str]]:
    """``(rule, before, after)`` of the ops events of a session whose registry, once ``op-1`` is
    registered, takes ``steps``."""

    async def body() -> list[tuple[str, str, str]]:
        m, _ = persistent()
        got: list[LifecycleEvent] = []
        m.events.subscribe(got.append)
        await m.register_session("s")
        registry = await m.ops_lifecycle_registry("s")
        registry.register_operation(OperationSpec("op-1", OperationKind.BACKGROUND_TOOL_OP, "s", "tool", "test"))
        steps(registry)
        await m.close()
        return [(e.rule, e.before, e.after) for e in got if e.machine == "ops"]

    return run(body())


def test_operation_registry_transitions_are_events() -> None:
    def steps(registry: OpsLifecycleRegistry) -> None:
        registry.provisioning_succeeded("op-1")
        registry.complete_operation("op-1", OperationResult("op-1", "done", False, 1, 0))

    assert _ops_events(steps) == [
        ("register_operation", "Absent", "Provisioning"),
        ("provisioning_succeeded", "Provisioning", "Running"),
        ("complete_operation", "Running", "Completed"),
    ]


def test_a_dropped_pending_watch_is_a_drop_watcher_event() -> None:
    def steps(registry: OpsLifecycleRegistry) -> None:
        registry.register_watcher("op-1")  # dropped at once
        view = registry.snapshot("op-1")
        assert view is not None and view.watcher_count == 0

    assert _ops_events(steps) == [
        ("register_operation", "Absent", "Provisioning"),
        ("register_watcher", "Provisioning", "Provisioning"),
        ("drop_watcher", "Provisioning", "Provisioning"),
    ]


def _dispatching(policy: DispatchFailurePolicy) -> tuple[MeerkatMachine, InMemoryRuntimeStore, list[CompositionSignal]]:
    m, store = persistent()
    signals: list[CompositionSignal] = []

    async def refuse(signal: CompositionSignal) -> None:
        signals.append(signal)
        raise RuntimeError("the orchestrator refused")

    m.set_composition_signal_dispatcher(refuse, policy)
    return m, store, signals


def test_a_refused_signal_under_restore_leaves_the_previous_state_in_memory_and_on_disk() -> None:
    async def body() -> None:
        m, store, signals = _dispatching(DispatchFailurePolicy.RESTORE)
        got: list[str] = []
        m.events.subscribe(lambda e: got.append(e.rule))
        await m.register_session("s")
        await m.accept_input("s", make_prompt("a", input_id="in-a"))
        with pytest.raises(CompositionDispatchFailed) as caught:
            await m.stop_runtime("s")
        assert caught.value.restored
        assert [s.rule for s in signals] == ["stop"]
        assert await m.runtime_state("s") is RuntimeState.IDLE
        view = await m.input_state("s", "in-a")
        assert view is not None and view.current_state.value == "queued"
        assert "stop" not in got
        await m.halt()
        again, _ = persistent(store)
        await again.register_session("s")  # what the disk holds: not stopped, the input still queued
        assert await again.runtime_state("s") is RuntimeState.IDLE
        recovered = await again.input_state("s", "in-a")
        assert recovered is not None and recovered.current_state.value == "queued"
        await again.close()

    run(body())


def test_a_refused_signal_under_preserve_keeps_the_committed_state() -> None:
    async def body() -> None:
        m, store, _ = _dispatching(DispatchFailurePolicy.PRESERVE)
        await m.register_session("s")
        with pytest.raises(CompositionDispatchFailed) as caught:
            await m.stop_runtime("s")
        assert not caught.value.restored
        assert await m.runtime_state("s") is RuntimeState.STOPPED
        await m.halt()
        again, _ = persistent(store)
        await again.register_session("s")
        assert await again.runtime_state("s") is RuntimeState.STOPPED
        await again.close()

    run(body())


def test_a_run_end_is_kept_when_its_signal_is_refused() -> None:
    async def body() -> None:
        m, _, signals = _dispatching(DispatchFailurePolicy.RESTORE)
        await m.register_session_with_executor("s", ScriptedExecutor())
        await m.accept_input("s", make_prompt("a", input_id="in-a"))
        await m.settle("s")
        view = await m.input_state("s", "in-a")
        assert view is not None and view.current_state.value == "consumed"
        assert [s.rule for s in signals] == ["executor_succeeded"]
        assert isinstance(await m.last_error("s"), RuntimeError)
        await m.close()

    run(body())


def test_the_retry_policy_limits_attempts_and_stops_at_errors_it_does_not_retry() -> None:
    class Fatal(Exception):
        pass

    async def runs(policy: RetryPolicy) -> int:
        m, _ = persistent(retry=policy)
        ex = ScriptedExecutor(Fail("one"), Fail("two"), Fail("three"))
        await m.register_session_with_executor("s", ex)
        await m.accept_input("s", make_prompt("a", input_id="in-a"))
        await m.settle("s")
        view = await m.input_state("s", "in-a")
        assert view is not None and view.current_state.value == "abandoned" and view.attempts == 2
        await m.close()
        return len(ex.applied)

    assert run(runs(RetryPolicy(max_attempts=2))) == 2
    assert run(runs(RetryPolicy(max_attempts=2, retryable=(Fatal,)))) == 1  # not retryable: abandoned at once
    assert RetryPolicy(backoff_s=1.0, multiplier=2.0, max_backoff_s=3.0).delay(3) == 3.0
    assert 0.5 <= RetryPolicy(backoff_s=1.0, jitter=0.5).delay(1) <= 1.0
    with pytest.raises(InvalidSetting):
        RetryPolicy(max_attempts=0)
    assert not RetryPolicy(retryable=(KeyError,)).is_retryable(ValueError("x"))


def test_a_scripted_failure_raising_an_error_the_policy_does_not_retry_abandons_at_once() -> None:
    class Fatal(Exception):
        pass

    async def body() -> tuple[int, int, str]:
        m, _ = persistent(retry=RetryPolicy(retryable=lambda error: not isinstance(error, Fatal)))
        ex = ScriptedExecutor(Fail(error=Fatal("no retry")), Fail("retried"))
        await m.register_session_with_executor("s", ex)
        await m.accept_input("s", make_prompt("a", input_id="in-a"))
        await m.settle("s")
        view = await m.input_state("s", "in-a")
        assert view is not None
        await m.close()
        return len(ex.applied), view.attempts, view.current_state.value

    assert run(body()) == (1, 3, "abandoned")  # attempts set to the limit, the second step never used


def test_a_direct_run_is_one_accept_and_run_event_and_a_fatal_failure_says_it_is_not_retryable() -> None:
    class Fatal(Exception):
        pass

    async def body() -> list[LifecycleEvent]:
        m, _ = persistent(retry=RetryPolicy(retryable=lambda error: not isinstance(error, Fatal)))
        got: list[LifecycleEvent] = []
        m.events.subscribe(got.append)
        await m.register_session("s")
        ex = ScriptedExecutor(Fail(error=Fatal("for good")), Fail("again"))

        async def op(run_id: RunId, primitive: RunPrimitive) -> tuple[None, CoreApplyOutput]:
            return None, await ex.apply(run_id, primitive)

        for input_id in ("in-a", "in-b"):
            with pytest.raises((Fatal, ExecutorError)):
                await m.accept_input_and_run("s", make_prompt("a", input_id=input_id, idempotency_key=input_id), op)
        await m.close()
        return got

    got = run(body())
    assert [e.rule for e in got] == [
        "register",
        "accept_and_run",
        "executor_failed_exhausted_without_loop",
        "accept_and_run",
        "executor_failed_without_loop",
        "unregister",
    ]
    started = got[1]
    assert (started.before, started.after) == ("Idle", "Running")
    assert [(c.entity, c.id, c.before, c.after) for c in started.changes if c.entity == "input"] == [
        ("input", "in-a", "Absent", "Staged")
    ]
    assert started.details["idempotency_key"] == "in-a" and started.details["attempt"] == 1
    fatal, retried = got[2], got[4]
    assert fatal.details["retryable"] is False and fatal.details["attempts"] == 3
    assert retried.details["retryable"] is True and retried.details["attempts"] == 1
    assert (retried.before, retried.after) == ("Running", "Idle")


def test_the_executor_error_is_on_the_input_history() -> None:
    async def body() -> list[str]:
        m, _ = persistent()
        await m.register_session_with_executor("s", ScriptedExecutor(Fail("boom")))
        await m.accept_input("s", make_prompt("a", input_id="in-a"))
        await m.settle("s")
        session = m._get("s")
        record = session.core.ledger.records["in-a"]  # type: ignore[index]
        await m.close()
        return [entry.reason for entry in record.history]

    reasons = run(body())
    assert any("failed; requeued: ExecutorError: boom" in reason for reason in reasons)


def test_machines_sharing_a_store_share_its_authority(tmp_path: Path) -> None:
    from meerkat_runtime.store.sqlite import SqliteRuntimeStore

    a = SqliteRuntimeStore(tmp_path / "x.sqlite")
    b = SqliteRuntimeStore(tmp_path / "x.sqlite")
    c = SqliteRuntimeStore(tmp_path / "y.sqlite")
    ma, mb, mc = (MeerkatMachine.persistent(s) for s in (a, b, c))
    assert ma.shares_runtime_persistence_with(mb) and not ma.shares_runtime_persistence_with(mc)
    assert ma.shares_runtime_store_authority(b) and ma.shares_runtime_store_authority(FaultInjectingStore(a))
    assert not MeerkatMachine.ephemeral().shares_runtime_persistence_with(ma)
    assert MeerkatMachine.ephemeral().shares_runtime_persistence_with(MeerkatMachine.ephemeral())
    assert ma.has_runtime_persistence and not MeerkatMachine.ephemeral().has_runtime_persistence
    for s in (a, b, c):
        s.close()


def test_a_compensating_write_that_fails_under_restore_leaves_the_session_in_doubt_then_adopts_the_store() -> None:
    """The policy restores memory and writes the previous state back; when that compensating
    write fails, the caller gets CompositionDispatchFailed (not restored, outcome unknown), the
    session is in doubt, and its next call reconciles with what the store holds: the committed
    stop, published then as adopted."""

    async def body() -> None:
        faults = FaultInjectingStore(InMemoryRuntimeStore())
        m, _ = persistent(faults)
        got: list[LifecycleEvent] = []
        m.events.subscribe(got.append)

        async def refuse(signal: CompositionSignal) -> None:
            faults.fail_next("commit_machine_lifecycle")  # the compensating write
            raise RuntimeError("the orchestrator refused")

        m.set_composition_signal_dispatcher(refuse, DispatchFailurePolicy.RESTORE)
        await m.register_session("s")
        with pytest.raises(CompositionDispatchFailed) as caught:
            await m.stop_runtime("s")
        assert not caught.value.restored and caught.value.outcome_unknown
        assert [e.rule for e in got if e.rule == "stop"] == []
        m.set_composition_signal_dispatcher(None)
        with pytest.raises(NotReady):  # the next step reconciles first: the store holds the stop
            await m.accept_input("s", make_prompt("a", input_id="in-a"))
        assert await m.runtime_state("s") is RuntimeState.STOPPED
        stops = [e for e in got if e.rule == "stop"]
        assert len(stops) == 1 and stops[0].details.get("adopted") is True
        await m.close()

    run(body())
