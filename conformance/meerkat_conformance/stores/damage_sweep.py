"""Damage sweep: every kind of damage a file set can take either leaves every acknowledged
write recoverable or is refused with a typed ``Corrupt`` — never a silent loss.

1. :func:`make_file_set` runs :mod:`meerkat_conformance.stores.damage_writer` in a child
   process: a real session history written through the runtime to a real SQLite file, the
   process then exiting without closing (database, ``-wal`` and ``-shm`` stay, as after a crash).
2. :func:`recovered_state` opens a copy with a fresh ``SqliteRuntimeStore`` and registers every
   session with a ``MeerkatMachine``: each session's inputs (id → phase, text), its operations
   (id, status, completion number) and its next completion number. The undamaged copy gives
   the reference, which must hold every acknowledged input.
3. Each :class:`Case` damages a fresh copy — one bit flipped in a database page, a log frame or
   the wal-index, or the log cut at an offset — and recovers it: ``recovered`` (equal to the
   reference), ``refused`` (``Corrupt``, or ``VersionMismatch`` for a flipped schema version),
   ``lost`` (recovered, but different: a silent loss) or ``error`` (any other exception).

``protections=False`` turns the defences off (no log check, no page check, a high-water mark
that always agrees with what was loaded) to show the sweep does find silent losses without them.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.store.high_water import HighWater
from meerkat_runtime.store.records import FinishedInput, InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.sqlite_wal import FRAME_HEADER_BYTES, WAL_HEADER_BYTES
from meerkat_runtime.vocab.errors import Corrupt, VersionMismatch

from meerkat_conformance.stores.childproc import child_env

DB = "runtime.sqlite3"
SUFFIXES = ("", "-wal", "-shm")
CaseKind = Literal["page", "wal", "shm", "truncate"]
Outcome = Literal["recovered", "refused", "lost", "error"]
State = dict[str, Any]


@dataclass(frozen=True, slots=True)
class FileSet:
    """A pristine file set and what its writer acknowledged."""

    directory: Path
    acked: dict[str, list[str]]
    page_size: int

    @property
    def db(self) -> Path:
        return self.directory / DB

    def size(self, suffix: str) -> int:
        path = self.directory / (DB + suffix)
        return path.stat().st_size if path.exists() else 0


@dataclass(frozen=True, slots=True)
class Case:
    """One damage: flip ``bit`` of the byte at ``offset`` of the file (``page``: the database,
    ``wal``, ``shm``), or cut the log at ``offset`` (``truncate``)."""

    kind: CaseKind
    offset: int
    bit: int = 0

    def label(self) -> str:
        if self.kind == "truncate":
            return f"log cut at byte {self.offset}"
        return f"bit {self.bit} of byte {self.offset} of the {'database' if self.kind == 'page' else self.kind}"


@dataclass
class SweepStats:
    cases: int = 0
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    by_kind: dict[str, Counter[Outcome]] = field(default_factory=dict)
    refusals: Counter[str] = field(default_factory=Counter)
    examples: dict[Outcome, list[str]] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, case: Case, outcome: Outcome, detail: str) -> None:
        self.cases += 1
        self.outcomes[outcome] += 1
        self.by_kind.setdefault(case.kind, Counter())[outcome] += 1
        examples = self.examples.setdefault(outcome, [])
        if len(examples) < 5:
            examples.append(f"{case.label()}: {detail}")

    def summary(self) -> str:
        kinds = "; ".join(
            f"{kind}: " + ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
            for kind, counts in sorted(self.by_kind.items())
        )
        totals = ", ".join(f"{self.outcomes[o]} {o}" for o in ("recovered", "refused", "lost", "error"))
        return f"{self.cases} cases: {totals} ({kinds}); {self.seconds:.1f} s"


def make_file_set(directory: Path, *, sessions: int = 2, inputs: int = 12, ops: int = 3) -> FileSet:
    """Write a history through the runtime in a child process that then exits without closing."""
    directory.mkdir(parents=True, exist_ok=True)
    spec = {"path": str(directory / DB), "sessions": sessions, "inputs": inputs, "ops": ops}
    done = subprocess.run(
        [sys.executable, "-m", "meerkat_conformance.stores.damage_writer", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"damage writer failed ({done.returncode}): {done.stderr[-2000:]}")
    acked = json.loads(done.stdout.strip().splitlines()[-1])["acked"]
    header = (directory / DB).read_bytes()[:100]
    size = int.from_bytes(header[16:18], "big")
    return FileSet(directory, acked, 65536 if size == 1 else size)


def copy_file_set(source: FileSet, target: Path) -> Path:
    """Copy the pristine files into ``target`` (created); returns the database path."""
    target.mkdir(parents=True, exist_ok=True)
    for suffix in SUFFIXES:
        src = source.directory / (DB + suffix)
        dst = target / (DB + suffix)
        if src.exists():
            shutil.copyfile(src, dst)
        elif dst.exists():
            dst.unlink()
    return target / DB


def damage(db: Path, case: Case) -> None:
    """Apply ``case`` to the file set of ``db``."""
    suffix = {"page": "", "wal": "-wal", "shm": "-shm", "truncate": "-wal"}[case.kind]
    path = db.with_name(db.name + suffix)
    if case.kind == "truncate":
        with open(path, "r+b") as fh:
            fh.truncate(case.offset)
        return
    data = bytearray(path.read_bytes())
    data[case.offset] ^= 1 << case.bit
    path.write_bytes(bytes(data))


class MarkBlindStore(SqliteRuntimeStore):
    """The protections off: a high-water mark that always agrees with what recovery loads, and
    rows read through the key index without counting it against the mark."""

    def load_active_input_states(self, runtime_id: str) -> list[InputRow]:
        return [row for row in self.load_input_states(runtime_id) if row.finished_at is None]

    def load_finished_inputs(self, runtime_id: str) -> list[FinishedInput]:
        listed = [
            FinishedInput(r.input_id, r.finished_at, r.idempotency_key, r.admission_seq)
            for r in self.load_input_states(runtime_id)
            if r.finished_at is not None
        ]
        return sorted(listed, key=lambda f: (f.finished_at, f.input_id))

    def load_high_water(self, runtime_id: str) -> HighWater | None:
        rows = self.load_input_states(runtime_id)
        lifecycle = self.load_machine_lifecycle(runtime_id)
        ops = self.load_ops_lifecycle(runtime_id)
        return HighWater(
            runtime_id,
            inputs=len(rows),
            lifecycles=int(lifecycle is not None),
            ops_snapshots=int(ops is not None and ops.snapshot is not None),
            ops_records=0 if ops is None else len(ops.appended),
        )


def open_store(db: Path, *, protections: bool = True) -> SqliteRuntimeStore:
    """A store on a damaged copy (``NORMAL``: the copy's own durability does not matter here)."""
    if protections:
        return SqliteRuntimeStore(db, synchronous="NORMAL")
    return MarkBlindStore(db, synchronous="NORMAL", wal_check=False, integrity_check="off")


async def _state(db: Path, sessions: Iterable[str], protections: bool) -> State:
    store = open_store(db, protections=protections)
    machine = MeerkatMachine.persistent(store, ownership=None, offload_store_calls=False)
    state: State = {}
    try:
        for session in sorted(sessions):
            await machine.register_session(session)
            inputs = {
                view.input_id: [view.current_state.value, view.attempts] for view in await machine.input_states(session)
            }
            registry = await machine.ops_lifecycle_registry(session)
            ops = sorted((op.id, op.status.value, op.completion_seq) for op in registry.list_operations())
            state[session] = {"inputs": inputs, "ops": ops, "next_seq": registry.view().next_completion_seq}
    finally:
        await machine.close()
        store.close()
    return state


def recovered_state(db: Path, sessions: Iterable[str], *, protections: bool = True) -> State:
    """Recover every session of ``db`` through a ``MeerkatMachine`` and project what it holds."""
    return asyncio.run(_state(db, list(sessions), protections))


def reference(pristine: FileSet, scratch: Path) -> State:
    """The state recovered from an undamaged copy; it must hold every acknowledged input."""
    db = copy_file_set(pristine, scratch / "reference")
    state = recovered_state(db, pristine.acked)
    for session, ids in pristine.acked.items():
        missing = set(ids) - set(state[session]["inputs"])
        if missing:
            raise AssertionError(f"undamaged copy lost acknowledged inputs of {session}: {sorted(missing)}")
    return state


def run_case(
    pristine: FileSet, expected: State, case: Case, scratch: Path, *, protections: bool = True
) -> tuple[Outcome, str]:
    db = copy_file_set(pristine, scratch / "case")
    damage(db, case)
    try:
        got = recovered_state(db, pristine.acked, protections=protections)
    except (Corrupt, VersionMismatch) as exc:
        return "refused", f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        return "error", f"{type(exc).__name__}: {exc}"
    if got == expected:
        return "recovered", ""
    return "lost", _difference(expected, got)


def _difference(expected: State, got: State) -> str:
    for session, want in expected.items():
        have = got.get(session, {})
        missing = sorted(set(want["inputs"]) - set(have.get("inputs", {})))
        if missing:
            return f"{session}: {len(missing)} acknowledged input(s) missing"
        changed = [i for i, s in want["inputs"].items() if have["inputs"].get(i) != s]
        if changed:
            return f"{session}: {len(changed)} input(s) in another state (e.g. {have['inputs'][changed[0]]})"
        if have.get("ops") != want["ops"] or have.get("next_seq") != want["next_seq"]:
            return f"{session}: operations or completion numbers differ"
    return "sessions differ"


def cases(
    pristine: FileSet,
    rng: random.Random,
    *,
    flips_per_page: int = 1,
    wal_flips: int = 100,
    shm_flips: int = 10,
    cuts_per_frame: int = 2,
    cut_frames: int | None = None,
    key_flips: int = 40,
) -> list[Case]:
    """Flips in every database page (``flips_per_page`` each) and ``key_flips`` flips inside
    stored runtime ids (in table and index pages: the keys recovery looks rows up by),
    ``wal_flips`` flips spread over the log, ``shm_flips`` in the wal-index header area, and log
    cuts: at every frame boundary and ``cuts_per_frame - 1`` points inside each frame (of
    ``cut_frames`` frames drawn, or all)."""
    found: list[Case] = []
    page = pristine.page_size
    db_size = pristine.size("")
    for start in range(0, db_size, page):
        for _ in range(flips_per_page):
            found.append(Case("page", start + rng.randrange(page), rng.randrange(8)))
    keys = list(_key_offsets(pristine.db.read_bytes()))
    for offset in rng.sample(keys, min(key_flips, len(keys))):
        found.append(Case("page", offset, rng.randrange(8)))
    wal_size = pristine.size("-wal")
    if wal_size:
        found.extend(Case("wal", rng.randrange(wal_size), rng.randrange(8)) for _ in range(wal_flips))
        frame = FRAME_HEADER_BYTES + page
        frames = (wal_size - WAL_HEADER_BYTES) // frame
        chosen: Iterable[int] = range(frames + 1)
        if cut_frames is not None and cut_frames < frames + 1:  # the log's own end is always among them
            chosen = sorted({frames, *rng.sample(range(frames), cut_frames)})
        for n in chosen:
            boundary = WAL_HEADER_BYTES + n * frame
            found.append(Case("truncate", boundary))
            if n < frames:
                found.extend(Case("truncate", boundary + rng.randrange(1, frame)) for _ in range(cuts_per_frame - 1))
        found.extend(Case("truncate", rng.randrange(WAL_HEADER_BYTES)) for _ in range(2))
    if pristine.size("-shm"):
        found.extend(Case("shm", rng.randrange(136), rng.randrange(8)) for _ in range(shm_flips))
    return found


KEY = b"rt:session:"


def _key_offsets(data: bytes) -> Iterator[int]:
    """Offsets of the bytes of every stored runtime id in ``data``."""
    start = data.find(KEY)
    while start >= 0:
        yield from range(start, start + len(KEY) + 2)
        start = data.find(KEY, start + 1)


def sweep(
    pristine: FileSet,
    all_cases: Iterable[Case],
    scratch: Path,
    *,
    protections: bool = True,
    stats: SweepStats | None = None,
) -> SweepStats:
    """Run every case against a fresh copy; count the outcomes (into ``stats`` if given, so a
    caller interrupted midway still has the cases that finished)."""
    stats = SweepStats() if stats is None else stats
    started = time.perf_counter()
    try:
        expected = reference(pristine, scratch)
        for case in all_cases:
            outcome, detail = run_case(pristine, expected, case, scratch, protections=protections)
            stats.add(case, outcome, detail)
            if outcome == "refused":
                stats.refusals[_refusal_kind(detail)] += 1
    finally:
        stats.seconds += time.perf_counter() - started
    return stats


def _refusal_kind(detail: str) -> str:
    if "write-ahead log" in detail:
        return "log check"
    if "PRAGMA" in detail:
        return "page check"
    if "high-water mark" in detail:
        return "high-water mark"
    if "integrity check" in detail or "checksum" in detail:
        return "row checksum"
    return "other"


def iter_outcomes(stats: SweepStats) -> Iterator[str]:
    for outcome, examples in stats.examples.items():
        for example in examples:
            yield f"{outcome}: {example}"
