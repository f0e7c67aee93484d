"""What checking an input at the door costs on the accept path: the field checks, the round
trip (encode the new row, decode it back, compare) and a whole durable accept with and without
them.

Usage::

    .venv/bin/python benchmarks/bench_accept_checks.py [--inputs N] [--rounds N] [--text-bytes N]

Figures are CPU time of this process (``time.process_time``), the best of ``--rounds``
interleaved rounds, so other jobs on a shared machine disturb them little: µs per call of
``check_input``, of ``encode_record`` alone and of ``encode_record_checked`` (encode + decode +
compare); and µs of CPU per accept on the in-memory store (inline store calls, ownership off)
with the checks, and with both bypassed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from meerkat_model.cli.usage import OneLineParser, int_at_least, interruptible
from meerkat_runtime.session import machine as machine_module
from meerkat_runtime.session import persistence as persistence_module
from meerkat_runtime.session.core.ledger import HistoryEntry, InputRecord, Lane
from meerkat_runtime.session.input_fields import check_input
from meerkat_runtime.session.inputs import Input, prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.row_codec import encode_record, encode_record_checked
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.vocab.inputs import InputLifecycleState as S


def _inputs(count: int, text_bytes: int) -> list[Input]:
    return [prompt("x" * text_bytes, idempotency_key=f"key-{i}", correlation_id=f"c{i}") for i in range(count)]


def _record(item: Input) -> InputRecord:
    now = time.time()
    record = InputRecord(item, S.QUEUED, Lane.QUEUE, 1, now, now)
    record.history.append(HistoryEntry(None, S.ACCEPTED, "accepted", now))
    record.history.append(HistoryEntry(S.ACCEPTED, S.QUEUED, "queued", now))
    return record


def _per_call_us(fn: Callable[[Any], Any], args: list[Any]) -> float:
    start = time.process_time_ns()
    for arg in args:
        fn(arg)
    return (time.process_time_ns() - start) / len(args) / 1000


@contextmanager
def _checks_bypassed() -> Iterator[None]:
    """The accept path without the field checks and the round trip (encode only)."""
    saved_check, saved_encode = machine_module.check_input, persistence_module.encode_new_row
    machine_module.check_input = lambda item, limits: item  # type: ignore[assignment]
    persistence_module.encode_new_row = lambda record: InputRow(record.input_id, encode_record(record))
    try:
        yield
    finally:
        machine_module.check_input = saved_check  # type: ignore[assignment]
        persistence_module.encode_new_row = saved_encode


async def _accept_cpu_us(items: list[Input]) -> float:
    """CPU µs per accept (the session's registration and close not counted)."""
    machine = MeerkatMachine.persistent(InMemoryRuntimeStore(), offload_store_calls=False, ownership=None)
    await machine.register_session("bench")
    start = time.process_time_ns()
    for item in items:
        await machine.accept_input("bench", item)
    spent = time.process_time_ns() - start
    await machine.close()
    return spent / len(items) / 1000


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(
        prog="bench_accept_checks.py",
        epilog="exit status: 0 done; 2 usage error; 130 interrupted (Ctrl-C)",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--inputs", type=int_at_least(1), default=5_000, help="inputs per round (default 5000)")
    parser.add_argument("--rounds", type=int_at_least(1), default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--text-bytes", type=int_at_least(0), default=200, help="prompt text size (default 200)")
    args = parser.parse_args(argv)

    rows: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        items = _inputs(args.inputs, args.text_bytes)
        records = [_record(item) for item in items]
        rows.setdefault("check_input (field checks)", []).append(_per_call_us(check_input, items))
        rows.setdefault("encode_record", []).append(_per_call_us(encode_record, records))
        rows.setdefault("encode_record_checked (round trip)", []).append(_per_call_us(encode_record_checked, records))
        rows.setdefault("accept, checks on (in-memory, inline)", []).append(asyncio.run(_accept_cpu_us(items)))
        with _checks_bypassed():
            fresh = _inputs(args.inputs, args.text_bytes)
            rows.setdefault("accept, checks bypassed", []).append(asyncio.run(_accept_cpu_us(fresh)))
    medians = {name: min(values) for name, values in rows.items()}
    row_bytes = len(encode_record(_record(_inputs(1, args.text_bytes)[0])))
    print(f"{args.inputs} inputs x {args.rounds} rounds, prompt text {args.text_bytes} bytes, row {row_bytes} bytes")
    print("CPU time, best round")
    print(f"{'measure':<42} {'us':>8}")
    for name, value in medians.items():
        print(f"{name:<42} {value:>8.2f}")
    round_trip = medians["encode_record_checked (round trip)"] - medians["encode_record"]
    print(f"{'round trip alone (checked - encode)':<42} {round_trip:>8.2f}")
    added = medians["accept, checks on (in-memory, inline)"] - medians["accept, checks bypassed"]
    print(f"{'added to an accept (on - bypassed)':<42} {added:>8.2f}")


if __name__ == "__main__":
    raise SystemExit(interruptible(main, "bench_accept_checks.py"))
