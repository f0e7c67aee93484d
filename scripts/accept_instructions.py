"""Instructions and system calls per durable accept: a figure that does not move with the load
of the machine, for comparing two revisions of the accept path.

Usage::

    .venv/bin/python scripts/accept_instructions.py [--mode inline|sessions8|sessions64|both]
        [--small N] [--large N] [--syscalls]

Runs an accept loop on a fresh SQLite file (``synchronous=NORMAL``, 200-byte prompts, the
inputs built in the loop) twice under ``valgrind --tool=callgrind`` — ``--small`` and then
``--large`` accepts (defaults 100 and 600; split evenly over the sessions, rounded down) — and
prints the difference divided by the difference in accepts made: the user-space instructions
of one accept with start-up, set-up and shutdown taken out, for all threads and for the event
loop's thread alone. ``inline``: one session, store calls on the event loop
(``offload_store_calls=False``), no ownership; ``sessions8``: eight sessions accepting at once
with the defaults (ownership on, store calls offloaded, group commit on), where a write is
committed on the loop's thread or handed to the store's writer thread; ``sessions64``: the same
with 64 sessions (batches of 20-40 writes); ``both``: ``inline`` and ``sessions8``.
``--syscalls`` also counts the system calls of one accept the same way under ``strace -f -c``
(their kernel time is not in the instruction count). Needs ``valgrind`` (and ``strace`` for
``--syscalls``) on the path; each run of valgrind takes about half a minute. The batching of
``sessions8`` and ``sessions64`` depends on thread timing, so their figures vary between runs
(by about 1 % on a quiet machine, several per cent under load: smaller batches cost the writer
more per write); ``inline`` by about 0.1 %. (Before ``sessions64`` was added the figures were
divided by ``--large`` minus ``--small`` rather than the accepts made: ``sessions8``'s default
runs make 504 more accepts, not 500, so its figures then read 0.8 % higher.)

Exit status: 0 figures printed, 1 a tool failed, 2 usage error, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


_SESSIONS = {"inline": 1, "sessions8": 8, "sessions64": 64}
"""Sessions accepting at once, per mode."""


def _made(mode: str, count: int) -> int:
    """The accepts a run of ``count`` makes in ``mode`` (split evenly, rounded down)."""
    sessions = _SESSIONS[mode]
    return count // sessions * sessions


def _accept_loop(mode: str, count: int) -> None:
    """The measured program: ``count`` accepts in ``mode``."""
    from meerkat_runtime.session.inputs import prompt
    from meerkat_runtime.session.machine import MeerkatMachine
    from meerkat_runtime.store.sqlite import SqliteRuntimeStore

    async def main(path: Path) -> None:
        store = SqliteRuntimeStore(str(path), synchronous="NORMAL")
        if mode == "inline":
            machine = MeerkatMachine.persistent(store, offload_store_calls=False, ownership=None, close_store=True)
            sessions = ["s0"]
        else:
            machine = MeerkatMachine.persistent(store, close_store=True)
            sessions = [f"s{i}" for i in range(_SESSIONS[mode])]
        for session in sessions:
            await machine.register_session(session)
        await asyncio.gather(*(machine.accept_input(s, prompt("x" * 200)) for s in sessions))
        per_session = count // len(sessions)
        items = {s: [prompt("x" * 200) for _ in range(per_session)] for s in sessions}

        async def accepts(session: str) -> None:
            for item in items[session]:
                await machine.accept_input(session, item)

        await asyncio.gather(*(accepts(s) for s in sessions))
        await machine.close()

    with tempfile.TemporaryDirectory() as d:
        asyncio.run(main(Path(d) / "accepts.sqlite3"))


def _environment() -> dict[str, str]:
    paths = [str(ROOT / p) for p in ("model", "impl", "conformance")] + [str(ROOT)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONHASHSEED": "0"}


def _child(mode: str, count: int) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(count)]


class ToolOutputMissing(Exception):
    """A measuring tool exited without failing but did not write what is read from it."""


def _instructions(mode: str, count: int) -> tuple[int, int]:
    """Instructions of a run of ``count`` accepts: all threads, and the first (the loop's)."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "cg.out"
        command = ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out}"]
        subprocess.run([*command, *_child(mode, count)], env=_environment(), check=True, capture_output=True)
        parts = sorted(Path(d).glob("cg.out*"))
        first_part = Path(f"{out}-01")  # the per-thread file of the first thread: the event loop's
        if first_part not in parts:
            written = ", ".join(part.name for part in parts) or "none"
            raise ToolOutputMissing(
                f"callgrind wrote no per-thread output {first_part.name} (files written: {written}); "
                "is --separate-threads=yes supported by this valgrind?"
            )
        total = 0
        first: int | None = None
        for part in parts:
            for line in part.read_text().splitlines():
                if line.startswith(("summary:", "totals:")):
                    value = int(line.split()[1])
                    total += value
                    if part == first_part:
                        first = value
                    break
        if first is None:
            raise ToolOutputMissing(f"callgrind's output {first_part.name} has no summary or totals line")
        return total, first


def _syscalls(mode: str, count: int) -> dict[str, int]:
    """System calls of a run of ``count`` accepts, by name (all threads)."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "strace.out"
        command = ["strace", "-f", "-c", "-o", str(out), *_child(mode, count)]
        subprocess.run(command, env=_environment(), check=True, capture_output=True)
        if not out.is_file():
            raise ToolOutputMissing(f"strace wrote no output file {out.name}")
        calls: dict[str, int] = {}
        for line in out.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                calls[parts[-1]] = int(parts[3])
        return calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Instructions (and system calls) per durable accept, measured under valgrind.",
        epilog="exit status: 0 figures printed, 1 a tool failed, 2 usage error, 130 interrupted (Ctrl-C)",
    )
    parser.add_argument(
        "--mode", choices=["inline", "sessions8", "sessions64", "both"], default="both", help="(default: both)"
    )
    parser.add_argument("--small", type=int, default=100, help="accepts of the first run (default: 100)")
    parser.add_argument("--large", type=int, default=600, help="accepts of the second run (default: 600)")
    parser.add_argument("--syscalls", action="store_true", help="also count system calls under strace")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        _accept_loop(args.child[0], int(args.child[1]))
        return 0
    if not 0 < args.small < args.large:
        parser.error("--small and --large must be positive, --small below --large")
    tools = ["valgrind", "strace"] if args.syscalls else ["valgrind"]
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        parser.error(f"needs {' and '.join(missing)} on the path")
    try:
        for mode in ["inline", "sessions8"] if args.mode == "both" else [args.mode]:
            accepts = _made(mode, args.large) - _made(mode, args.small)
            if accepts <= 0:
                parser.error(f"--small and --large make the same number of accepts in {mode}")
            small, large = _instructions(mode, args.small), _instructions(mode, args.large)
            print(
                f"{mode}: {(large[0] - small[0]) / accepts:,.0f} instructions per accept "
                f"({(large[1] - small[1]) / accepts:,.0f} on the event loop's thread)"
            )
            if args.syscalls:
                before, after = _syscalls(mode, args.small), _syscalls(mode, args.large)
                per = {name: (after.get(name, 0) - before.get(name, 0)) / accepts for name in before.keys() | after}
                shown = sorted(((n, c) for n, c in per.items() if abs(c) >= 0.05), key=lambda item: -item[1])
                print(f"{mode}: system calls per accept: " + ", ".join(f"{n} {c:.2f}" for n, c in shown))
    except subprocess.CalledProcessError as exc:
        stderr = exc.stderr.decode(errors="replace")[-2000:]
        print(f"error: {exc.cmd[0]} failed (exit status {exc.returncode}): {stderr}", file=sys.stderr)
        return 1
    except ToolOutputMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
