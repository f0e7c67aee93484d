"""Retention by age after the wall clock stepped back (an NTP step, a restored VM).

Inputs that finish after the step carry earlier times than those before it, so the finished
listing is no longer in time order. Every input past ``max_age_s`` must still be compacted,
whatever order it finished in, and a running session must keep what a restart of the same
store keeps (a restart lists finished inputs by time).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from meerkat_runtime.session.executor import RunResult
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Accepted
from meerkat_runtime.session.retention_policy import RetentionPolicy
from meerkat_runtime.session.testing import ScriptedExecutor, Succeed
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.runtime_session.helpers import make_prompt, run

RT = canonical_runtime_id("s")
POLICY = RetentionPolicy(keep_finished=None, max_age_s=8)


class _WallClock:
    """``time.time`` moved by hand: ``offset`` seconds from the real clock."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = 0.0
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + self.offset)


async def _finish(m: MeerkatMachine, keys: list[str]) -> None:
    for key in keys:
        _, handle = await m.accept_input_with_completion("s", make_prompt(key, idempotency_key=key))
        assert handle is not None
        await handle.wait()


def _stored(path: Path) -> set[str]:
    with SqliteRuntimeStore(path) as store:
        return {f.idempotency_key or "" for f in store.load_finished_inputs(RT)}


def test_inputs_past_the_age_are_compacted_after_the_clock_stepped_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.db"
    clock = _WallClock(monkeypatch)
    after = [f"after-{i}" for i in range(12)]

    async def running() -> set[str]:
        m = MeerkatMachine.persistent(path, retention=POLICY, ownership=None)
        await m.register_session_with_executor("s", ScriptedExecutor(default=Succeed(RunResult("ok", 1, 0, 0))))
        await _finish(m, ["before-0", "before-1"])
        clock.offset -= 3600  # the wall clock steps back an hour
        await _finish(m, after)
        clock.offset += 60  # a minute later every "after" input is past max_age_s
        await _finish(m, ["trigger"])
        # compacted: the key no longer deduplicates, in this process as after a restart
        assert isinstance(await m.accept_input("s", make_prompt("again", idempotency_key=after[0])), Accepted)
        await m.close()
        return _stored(path)

    kept_running = run(running())
    assert not kept_running & set(after[1:]), f"inputs past max_age_s were kept: {sorted(kept_running)}"
    assert {"before-0", "before-1", "trigger"} <= kept_running

    async def restarted() -> None:
        m = MeerkatMachine.persistent(path, retention=POLICY, ownership=None)
        await m.register_session("s")
        await m.close()

    run(restarted())
    assert _stored(path) == kept_running  # a restart compacts nothing more


def test_a_listing_back_in_time_order_is_walked_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An input finished at an earlier time than the one before it marks the listing out of
    order; once such inputs are compacted the listing is in order again and so marked."""
    path = tmp_path / "s.db"
    clock = _WallClock(monkeypatch)

    async def check() -> None:
        m = MeerkatMachine.persistent(path, retention=POLICY, ownership=None)
        await m.register_session_with_executor("s", ScriptedExecutor(default=Succeed(RunResult("ok", 1, 0, 0))))
        ledger = m._sessions[RT].core.ledger
        await _finish(m, ["a", "b"])
        assert ledger.finished_in_order
        clock.offset -= 30  # a small step back: "c" finishes before "a" and "b" by the clock
        await _finish(m, ["c"])
        assert not ledger.finished_in_order
        clock.offset += 60  # "a", "b" and "c" are past max_age_s: "d" finishing compacts them
        await _finish(m, ["d"])
        await _finish(m, ["e"])  # the next pass finds the listing in order
        assert ledger.finished_in_order
        await m.close()

    run(check())
    assert _stored(path) == {"d", "e"}
