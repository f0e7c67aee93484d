"""A writer frozen while it sends a large write holds no lock another worker needs.

A write whose data does not fit in the socket buffers is sent while the server reads it; a
process stopped (``SIGSTOP``) in the middle leaves its backend ``active`` in ``ClientRead``,
where no server timeout applies (the idle-in-transaction timer runs only between statements).
The store sends a write's data before it asks for the runtime's advisory lock, so the frozen
owner holds nothing: once its lease has expired the next worker claims the session and writes,
and the frozen write, resumed, lands nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from meerkat_runtime.store.lease import Lease
from meerkat_runtime.store.postgres import PostgresRuntimeStore
from meerkat_runtime.store.tables import INPUTS, OPS_RECORDS
from meerkat_runtime.vocab.errors import StoreError

from tests.postgres.helpers import admin, named, open_store

RT = "rt:session:frozen-sender"
APP = "meerkat-frozen-sender"
SIZE = 64 * 1024 * 1024
"""Far more than the socket buffers hold: the server is still reading the message when the
sender is stopped."""
GUARD_S = 30.0
"""How long the second worker tries to claim the session (it succeeds within about the first
owner's lease, 2 s, plus its own ``timeout_s``; the guard only keeps a failure from hanging)."""

_CHILD = r"""
import sys
from meerkat_runtime.store.postgres import PostgresRuntimeStore
from meerkat_runtime.store.records import InputRow

dsn, schema, rt, method, size = sys.argv[1:6]
store = PostgresRuntimeStore(dsn, schema=schema, timeout_s=1)
lease = store.claim_lease(rt, "host-a", 2.0)
print("claimed", flush=True)
sys.stdin.readline()
data = b"y" * int(size)
try:
    if method == "append_ops_record":
        store.append_ops_record(rt, data, fence=lease.fence)
    else:
        store.persist_input_state(rt, InputRow("big", data), fence=lease.fence)
    print("written", flush=True)
except Exception as exc:
    print(type(exc).__name__, flush=True)
store.close()
"""

TABLES = {"append_ops_record": OPS_RECORDS, "persist_input_state": INPUTS}


def _sending_backend(dsn: str, table: str) -> int | None:
    """The child's backend while it reads the big statement's message, if it is."""
    with admin(dsn) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND state = 'active' "
            "AND wait_event = 'ClientRead' AND query LIKE %s",
            (APP, f"%{table}%"),
        ).fetchone()
    return None if row is None else int(row[0])


def _stop_while_sending(child: subprocess.Popen[str], dsn: str, table: str) -> None:
    for _ in range(20_000):
        if _sending_backend(dsn, table) is not None:
            os.kill(child.pid, signal.SIGSTOP)
            return
        if child.poll() is not None:
            break
    pytest.fail("the writer was never seen sending its statement")


def _claim_within_guard(store: PostgresRuntimeStore) -> Lease:
    deadline = time.monotonic() + GUARD_S
    last: StoreError | None = None
    while time.monotonic() < deadline:
        try:
            return store.claim_lease(RT, "host-b", 60.0)
        except StoreError as exc:  # the lease is live, or its lock is held
            last = exc
            time.sleep(0.2)
    pytest.fail(f"the session could not be taken over while its owner was frozen mid-send: {last!r}")


@pytest.mark.parametrize("method", sorted(TABLES))
def test_an_owner_frozen_while_sending_a_large_write_does_not_block_the_takeover(
    pg_dsn: str, pg_schema: str, method: str
) -> None:
    open_store(pg_dsn, pg_schema).close()  # the schema exists before the child opens it
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, named(pg_dsn, APP), pg_schema, RT, method, str(SIZE)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    store = open_store(pg_dsn, pg_schema, timeout_s=1)
    try:
        assert child.stdin is not None and child.stdout is not None
        assert child.stdout.readline() == "claimed\n"
        child.stdin.write("go\n")
        child.stdin.flush()
        _stop_while_sending(child, pg_dsn, TABLES[method])

        lease = _claim_within_guard(store)
        store.append_ops_record(RT, b"taken over", fence=lease.fence)

        os.kill(child.pid, signal.SIGCONT)
        out, _ = child.communicate(timeout=120)
        # refused: its connection abandoned at its deadline, or the fence (both are WriteFailed)
        assert out.strip() in ("WriteFailed", "OwnershipLost"), out
        ops = store.load_ops_lifecycle(RT)
        assert ops is not None and ops.appended == (b"taken over",)
        assert store.load_input_states(RT) == []
        mark = store.load_high_water(RT)
        assert mark is not None and (mark.inputs, mark.ops_records) == (0, 1)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGCONT)
            child.kill()
            child.wait(timeout=30)
        store.close()
