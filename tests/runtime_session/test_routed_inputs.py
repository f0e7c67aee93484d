"""Routed inputs (``apply_routed_meerkat_input``): what another component may deliver into a
session, what is refused before anything changes, and restore on a refused dispatch whatever the
machine's failure policy."""

from __future__ import annotations

import pytest
from meerkat_runtime.session.dispatch import CompositionDispatchFailed, CompositionSignal, DispatchFailurePolicy
from meerkat_runtime.session.outcomes import Accepted
from meerkat_runtime.session.reports import RetireReport
from meerkat_runtime.session.routed import RoutedInput, RoutedInputRefused
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.vocab.errors import SessionNotFound
from meerkat_runtime.vocab.runtime import RuntimeState

from tests.runtime_session.helpers import make_prompt, persistent, run, stored_rows

INTERNAL_VARIANTS = [
    "start_run",
    "executor_succeeded",
    "executor_failed",
    "executor_failed_exhausted_retired",
    "boundary_commit_failed",
    "terminal_snapshot_failed",
    "register",
    "register_noop",
    "begin_attach",
    "finish_attach_keep_phase",
    "attach_failed",
    "unregister",
    "reconcile",
    "crash",
    "retire_noop",
    "interrupt_noop",
]


@pytest.mark.parametrize("command", INTERNAL_VARIANTS)
def test_runtime_internal_variants_are_refused_before_anything_changes(command: str) -> None:
    async def body() -> None:
        m, store = persistent()
        rules: list[str] = []
        m.events.subscribe(lambda e: rules.append(e.rule))
        await m.register_session("s")
        await m.accept_input("s", make_prompt("a", input_id="in-a"))
        before = (await m.session_view("s"), stored_rows(store, "s"), list(rules))
        with pytest.raises(RoutedInputRefused, match="runtime-internal") as caught:
            await m.apply_routed_meerkat_input("s", RoutedInput(command))
        assert caught.value.command == command and caught.value.kind == "routed_input_refused"
        assert (await m.session_view("s"), stored_rows(store, "s"), rules) == before
        await m.close()

    run(body())


def test_malformed_and_unknown_routed_inputs_are_refused() -> None:
    async def body() -> None:
        m, _ = persistent()
        await m.register_session("s")
        with pytest.raises(RoutedInputRefused, match="unknown command"):
            await m.apply_routed_meerkat_input("s", RoutedInput("pause"))
        with pytest.raises(RoutedInputRefused, match="must carry the Input"):
            await m.apply_routed_meerkat_input("s", RoutedInput("accept"))
        with pytest.raises(RoutedInputRefused, match="only an accept carries an input"):
            await m.apply_routed_meerkat_input("s", RoutedInput("retire", make_prompt("a")))
        with pytest.raises(RoutedInputRefused, match="not a RoutedInput"):
            await m.apply_routed_meerkat_input("s", "retire")  # type: ignore[arg-type]
        assert await m.runtime_state("s") is RuntimeState.IDLE
        await m.close()

    run(body())


def test_a_routed_input_never_registers_a_session() -> None:
    async def body() -> None:
        m, _ = persistent()
        with pytest.raises(SessionNotFound):
            await m.apply_routed_meerkat_input("s", RoutedInput("accept", make_prompt("a")))
        assert not await m.contains_session("s")
        await m.close()

    run(body())


def test_routed_commands_run_as_the_machines_own_methods() -> None:
    async def body() -> None:
        m, _ = persistent()
        rules: list[str] = []
        m.events.subscribe(lambda e: rules.append(e.rule))
        executor = ScriptedExecutor()
        await m.register_session_with_executor("s", executor)
        outcome = await m.apply_routed_meerkat_input("s", RoutedInput("accept", make_prompt("a", input_id="in-a")))
        assert isinstance(outcome, Accepted)
        await m.settle("s")
        report = await m.apply_routed_meerkat_input("s", RoutedInput("retire"))
        assert isinstance(report, RetireReport)
        assert await m.runtime_state("s") is RuntimeState.RETIRED
        await m.apply_routed_meerkat_input("s", RoutedInput("recycle"))
        await m.apply_routed_meerkat_input("s", RoutedInput("interrupt"))
        await m.apply_routed_meerkat_input("s", RoutedInput("destroy"))
        assert await m.runtime_state("s") is RuntimeState.DESTROYED
        assert rules[3:] == [
            "accept",
            "start_run",
            "executor_succeeded",
            "retire",
            "recycle_with_loop",
            "interrupt_noop",
            "destroy_with_loop",
        ]
        await m.close()

    run(body())


def test_a_refused_dispatch_of_a_routed_input_restores_even_under_preserve() -> None:
    async def body() -> None:
        m, store = persistent()
        signals: list[CompositionSignal] = []

        async def refuse(signal: CompositionSignal) -> None:
            signals.append(signal)
            raise RuntimeError("the orchestrator refused")

        m.set_composition_signal_dispatcher(refuse, DispatchFailurePolicy.PRESERVE)
        await m.register_session("s")
        await m.accept_input("s", make_prompt("a", input_id="in-a"))
        with pytest.raises(CompositionDispatchFailed) as routed:
            await m.apply_routed_meerkat_input("s", RoutedInput("stop"))
        assert routed.value.restored
        assert await m.runtime_state("s") is RuntimeState.IDLE
        view = await m.input_state("s", "in-a")
        assert view is not None and view.current_state.value == "queued"
        # The same command given directly keeps the committed state under PRESERVE.
        with pytest.raises(CompositionDispatchFailed) as direct:
            await m.retire_runtime("s")
        assert not direct.value.restored
        assert await m.runtime_state("s") is RuntimeState.RETIRED
        assert [s.rule for s in signals] == ["stop", "retire_without_loop"]
        await m.halt()
        again, _ = persistent(store)
        await again.register_session("s")  # on disk: the routed stop undone, the direct retire kept
        assert await again.runtime_state("s") is RuntimeState.RETIRED
        await again.close()

    run(body())
