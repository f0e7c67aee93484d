"""Shared helpers for the session runtime tests."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from meerkat_runtime.session.inputs import PromptInput, prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.vocab.ids import canonical_runtime_id

T = TypeVar("T")


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


def persistent(store: Any = None, **kwargs: Any) -> tuple[MeerkatMachine, Any]:
    store = store if store is not None else InMemoryRuntimeStore()
    return MeerkatMachine.persistent(store, **kwargs), store
