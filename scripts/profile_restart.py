"""Where the time of a restart with a large backlog goes: wall and CPU time of opening the store,
registering the session and the first accept, and a cProfile of the same.

Usage::

    .venv/bin/python scripts/profile_restart.py [--pending N] [--runs N] [--profile] [--top N]
        [--file PATH] [--dir DIR]

One SQLite file holds a session with N pending (Queued) inputs, written as
``benchmarks/bench_restart.py`` writes them (``--file`` reuses a file made before; it is
copied, never changed). Each run restarts on a fresh copy in this process: the store calls
inline (``offload_store_calls=False``), every finished input kept. A line per run shows the
wall time of the store's open (its page check included), of ``register_session`` and of the
first ``accept_input``, and the process's CPU time over all three (``time.process_time``: what
the restart costs whatever else the machine runs). ``--profile`` adds one run under cProfile,
its functions by cumulative time. Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

from meerkat_runtime.session.inputs import prompt
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.retention_policy import RetentionPolicy
from meerkat_runtime.store.sqlite import SqliteRuntimeStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_restart import SESSION, write_session


async def _restart(path: Path) -> dict[str, float]:
    cpu = time.process_time()
    start = time.perf_counter()
    store = SqliteRuntimeStore(path)
    machine = MeerkatMachine.persistent(
        store, offload_store_calls=False, close_store=True, retention=RetentionPolicy(None, None)
    )
    opened = time.perf_counter()
    await machine.register_session(SESSION)
    registered = time.perf_counter()
    if not (await machine.accept_input(SESSION, prompt("after the restart"))).is_accepted:
        raise RuntimeError("the first accept after the restart was not accepted")
    accepted = time.perf_counter()
    used = time.process_time() - cpu
    await machine.close()
    return {
        "open": opened - start,
        "register": registered - opened,
        "accept": accepted - registered,
        "total": accepted - start,
        "cpu": used,
    }


def _line(figures: dict[str, float]) -> str:
    return (
        f"open {figures['open'] * 1000:7.1f} ms   register {figures['register'] * 1000:7.1f} ms   "
        f"first accept {figures['accept'] * 1000:5.1f} ms   total {figures['total'] * 1000:7.1f} ms   "
        f"CPU {figures['cpu'] * 1000:7.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="profile_restart", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pending", type=int, default=100_000, help="pending inputs (default 100000)")
    parser.add_argument("--runs", type=int, default=3, help="timed restarts (default 3)")
    parser.add_argument("--profile", action="store_true", help="add one restart under cProfile")
    parser.add_argument("--top", type=int, default=30, help="functions the profile lists (default 30)")
    parser.add_argument("--file", default=None, help="a file made before (copied, never changed)")
    parser.add_argument("--dir", default=None, help="folder for the files (default: a temporary one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        source = Path(folder) / "pending.db"
        if args.file is not None:
            shutil.copyfile(args.file, source)
        else:
            write_session(source, args.pending, finished=False)
        copy = Path(folder) / "restart.db"
        for _ in range(args.runs):
            shutil.copyfile(source, copy)
            print(_line(asyncio.run(_restart(copy))), flush=True)
        if args.profile:
            shutil.copyfile(source, copy)
            profiler = cProfile.Profile()
            profiler.enable()
            figures = asyncio.run(_restart(copy))
            profiler.disable()
            print(f"under cProfile: {_line(figures)}")
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.top)
            print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
