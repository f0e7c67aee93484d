"""A real process crash: a child accepts inputs on a SQLite file and is SIGKILLed mid-run; a
new process recovers every acknowledged input exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.outcomes import Deduplicated
from meerkat_runtime.session.row_codec import decode_record
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.session.views import InputStateView
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.runtime_session.helpers import SAME_WORKER, S, make_prompt, run

TOTAL = 200
KILL_AFTER = 40

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from meerkat_runtime.session.executor import success_output
    from meerkat_runtime.session.inputs import prompt
    from meerkat_runtime.session.machine import MeerkatMachine
    from meerkat_runtime.session.ownership import OwnershipConfig
    from meerkat_runtime.store.sqlite import SqliteRuntimeStore

    class SlowExecutor:
        async def apply(self, run_id, primitive):
            await asyncio.sleep(0.002)
            return success_output(primitive)

        async def control(self, command):
            return None

    async def main(path, total):
        machine = MeerkatMachine.persistent(SqliteRuntimeStore(path), ownership=OwnershipConfig(owner_id="worker-1"))
        await machine.register_session_with_executor("s", SlowExecutor())
        for i in range(total):
            item = prompt(f"p{i}", idempotency_key=f"k{i}")
            outcome = await machine.accept_input("s", item)
            assert outcome.is_accepted
            sys.stdout.write(f"{item.header.id} k{i}\\n")
            sys.stdout.flush()
        sys.stdout.write("DONE\\n")
        sys.stdout.flush()
        await asyncio.sleep(60)

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


def _crash_child(tmp_path: Path, db: Path) -> list[tuple[str, str]]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(db), str(TOTAL)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    acked: list[tuple[str, str]] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "DONE":
                break
            input_id, key = line.split()
            acked.append((input_id, key))
            if len(acked) >= KILL_AFTER:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err
    assert len(acked) >= KILL_AFTER, err
    return acked


def test_sigkill_mid_run_loses_no_acknowledged_input_and_duplicates_none(tmp_path: Path) -> None:
    db = tmp_path / "runtime.sqlite"
    acked = _crash_child(tmp_path, db)
    store = SqliteRuntimeStore(db)
    rows = store.load_input_states(canonical_runtime_id("s"))
    ids = [r.input_id for r in rows]
    assert len(ids) == len(set(ids))
    assert {i for i, _ in acked} <= set(ids)

    async def body() -> None:
        machine = MeerkatMachine.persistent(store, ownership=SAME_WORKER)
        await machine.register_session("s")
        views: dict[str, InputStateView] = {v.input_id: v for v in await machine.input_states("s")}
        for input_id, _ in acked:
            assert views[input_id].current_state in (S.CONSUMED, S.QUEUED)
        queued_before = [i for i, v in views.items() if v.current_state is S.QUEUED]
        dup = make_prompt("again", idempotency_key=acked[0][1])
        assert isinstance(await machine.accept_input("s", dup), Deduplicated)
        executor = ScriptedExecutor()
        await machine.ensure_session_with_executor("s", executor)
        await machine.settle("s")
        applied = [ids[0] for _, ids in executor.applied]
        assert sorted(applied) == sorted(queued_before)
        assert len(applied) == len(set(applied))
        final: dict[str, S] = {v.input_id: v.current_state for v in await machine.input_states("s")}
        assert all(final[i] is S.CONSUMED for i, _ in acked)
        await machine.close()

    run(body())
    stored = {r.input_id: decode_record(r.payload).phase for r in store.load_input_states(canonical_runtime_id("s"))}
    assert all(stored[i] is S.CONSUMED for i, _ in acked)
    store.close()
