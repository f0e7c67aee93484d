"""What lifecycle events cost: inputs accepted and run to completion on a SQLite store with events
off (no subscriber) and on (a subscriber that keeps them, the JSON Lines event log, the logging
subscriber, and the OpenTelemetry subscriber when the ``otel`` extra is installed), against a raw
store commit measured in the same run.

Usage::

    .venv/bin/python benchmarks/bench_events.py [--inputs N] [--rounds N] [--dir DIR]

Each round runs every variant once, interleaved, on a fresh SQLite file (WAL, synchronous FULL,
store calls inline on the event loop, ownership off), with a ``ScriptedExecutor`` that succeeds:
per input one accept commit and one boundary commit, three events (``accept``, ``start_run``,
``executor_succeeded``). Figures are the best round: wall µs and CPU µs (``time.process_time``)
per input, the added cost over events off, and that addition as a fraction of one raw commit
(``persist_input_state`` of one row on the same kind of file, timed in the same round).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from meerkat_model.cli.usage import OneLineParser, int_at_least, interruptible
from meerkat_runtime.events.event import LifecycleEvent
from meerkat_runtime.events.jsonl import EventLog
from meerkat_runtime.events.logging_sink import LoggingSubscriber
from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.testing import ScriptedExecutor
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.ids import canonical_runtime_id

Subscribe = Callable[[MeerkatMachine, Path], Callable[[], None]]
"""Subscribes a variant's subscriber to a machine; returns what closes it."""


def _off(machine: MeerkatMachine, folder: Path) -> Callable[[], None]:
    return lambda: None


def _kept(machine: MeerkatMachine, folder: Path) -> Callable[[], None]:
    kept: list[LifecycleEvent] = []
    return machine.events.subscribe(kept.append).close


def _jsonl(machine: MeerkatMachine, folder: Path) -> Callable[[], None]:
    log = EventLog(folder / "events")
    subscription = machine.events.subscribe(log)

    def close() -> None:
        subscription.close()
        log.close()

    return close


def _logging(machine: MeerkatMachine, folder: Path) -> Callable[[], None]:
    return machine.events.subscribe(LoggingSubscriber()).close


def _otel() -> Subscribe | None:
    try:
        from meerkat_runtime.events.otel import OpenTelemetrySubscriber
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    except ImportError:
        return None

    def subscribe(machine: MeerkatMachine, folder: Path) -> Callable[[], None]:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
        subscriber = OpenTelemetrySubscriber(tracer_provider=provider)
        subscription = machine.events.subscribe(subscriber)

        def close() -> None:
            subscription.close()
            subscriber.close()
            provider.shutdown()

        return close

    return subscribe


async def _per_input(folder: Path, inputs: int, subscribe: Subscribe) -> tuple[float, float]:
    """Wall and CPU µs per input accepted and run to completion (registration not counted)."""
    store = SqliteRuntimeStore(str(folder / "rt.db"))
    machine = MeerkatMachine.persistent(store, offload_store_calls=False, ownership=None)
    close = subscribe(machine, folder)
    await machine.register_session_with_executor("bench", ScriptedExecutor())
    items = [prompt(f"input {i}") for i in range(inputs)]
    wall, cpu = time.perf_counter_ns(), time.process_time_ns()
    for item in items:
        await machine.accept_input("bench", item)
        await machine.settle("bench")
    wall, cpu = time.perf_counter_ns() - wall, time.process_time_ns() - cpu
    await machine.close()
    close()
    store.close()
    return wall / inputs / 1000, cpu / inputs / 1000


def _raw_commit(folder: Path, inputs: int) -> tuple[float, float]:
    """Wall and CPU µs of one ``persist_input_state`` of a stored row on a fresh file."""
    store = SqliteRuntimeStore(str(folder / "raw.db"))
    runtime_id = canonical_runtime_id("bench")
    payload = b'{"phase":"queued"}' * 8
    wall, cpu = time.perf_counter_ns(), time.process_time_ns()
    for i in range(inputs):
        store.persist_input_state(runtime_id, InputRow(f"in-{i}", payload))
    wall, cpu = time.perf_counter_ns() - wall, time.process_time_ns() - cpu
    store.close()
    return wall / inputs / 1000, cpu / inputs / 1000


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(
        prog="bench_events.py",
        epilog="exit status: 0 done; 2 usage error; 130 interrupted (Ctrl-C)",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--inputs", type=int_at_least(1), default=300, help="inputs per variant and round (300)")
    parser.add_argument("--rounds", type=int_at_least(1), default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--dir", default=None, help="folder for the SQLite files (default: a temporary one)")
    args = parser.parse_args(argv)
    logging.getLogger("meerkat_runtime").setLevel(logging.WARNING)  # INFO records built, then dropped

    variants: dict[str, Subscribe] = {
        "events off": _off,
        "subscriber keeping events": _kept,
        "JSON Lines event log": _jsonl,
        "logging subscriber": _logging,
    }
    otel = _otel()
    if otel is not None:
        variants["OpenTelemetry spans (SDK)"] = otel
    best: dict[str, tuple[float, float]] = {}
    raw_best: tuple[float, float] | None = None
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-events-") as root:
        for n in range(args.rounds):
            raw_folder = Path(root) / f"raw-{n}"
            raw_folder.mkdir()
            raw = _raw_commit(raw_folder, args.inputs)
            raw_best = raw if raw_best is None else (min(raw_best[0], raw[0]), min(raw_best[1], raw[1]))
            for name, subscribe in variants.items():
                folder = Path(root) / f"{n}-{len(best)}-{name.split()[0]}"
                folder.mkdir()
                wall, cpu = asyncio.run(_per_input(folder, args.inputs, subscribe))
                old = best.get(name)
                best[name] = (wall, cpu) if old is None else (min(old[0], wall), min(old[1], cpu))
    assert raw_best is not None
    print(f"{args.inputs} inputs x {args.rounds} rounds, SQLite WAL synchronous FULL, 2 commits + 3 events per input")
    print(f"raw commit (persist_input_state, one row): wall {raw_best[0]:.1f} us, CPU {raw_best[1]:.1f} us")
    print(f"{'variant':<28} {'wall us':>9} {'CPU us':>9} {'+CPU us':>8} {'+CPU/raw commit CPU':>20}")
    off_cpu = best["events off"][1]
    for name, (wall, cpu) in best.items():
        added = cpu - off_cpu
        print(f"{name:<28} {wall:>9.1f} {cpu:>9.1f} {added:>8.1f} {added / raw_best[1]:>20.2f}")


if __name__ == "__main__":
    raise SystemExit(interruptible(main, "bench_events.py"))
