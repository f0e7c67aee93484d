"""Reading an SQLite write-ahead log before SQLite does: lost commits versus a torn tail.

SQLite recovers a WAL by reading frames from the start while each one is valid (its salts
match the header and its cumulative checksum matches) and keeps everything up to the last
valid commit frame. The first bad frame ends the log: **every later commit is dropped without
an error**, acknowledged ones included. :func:`analyse_wal` reads the same bytes first and
tells the two cases apart:

* **torn tail** — bad or incomplete frames only at the end: a crash while a commit was being
  written. That commit was never acknowledged; dropping it is correct. Not damage.
* **lost commits** — after the first bad frame there are *genuine* frames of the same log
  generation ending in a commit frame. A frame is genuine when its stored checksum is the
  checksum of its content chained from the frame before it (from that frame's stored
  checksum, or from the checksum its content should have had: a damaged checksum field does
  not hide the frames after it), and it either carries the generation's salts or directly
  continues genuine frames (a damaged salt does not hide its frame). Stale frames of an older
  generation and the leftovers of a rolled-back write never qualify as commits of this one.
* A damaged **header** makes SQLite ignore the whole log: any genuine commit frame in it is
  lost.

When the wal-index (``-shm``) of the last writer survives (a crash leaves it; a clean close
deletes it) its header records how many frames were committed (``mxFrame``) and how many were
already copied into the database (``nBackfill``). A log that now holds fewer committed frames
of that generation — truncated at a commit boundary, its last commit frame damaged, its header
damaged, the file deleted — lost acknowledged commits too (unless the frames that are gone had
all been copied into the database and no older copy of a page remains in the log to shadow
them).

Formats (sqlite.org/fileformat2.html#walformat): a 32-byte header (magic ``0x377f0682``, bit 0
= big-endian checksums; version 3007000; page size; checkpoint sequence; two salts; checksum
of the first 24 bytes), then frames of a 24-byte header (page number, database size in pages
for a commit frame else 0, the two salts, the cumulative checksum over the first 8 header
bytes and the page) and one page. The wal-index header is two identical 48-byte copies in host
byte order (``mxFrame`` at offset 16, salts at 32, a checksum of the first 40 bytes at 40)
followed by ``nBackfill`` at offset 96.

This module only reads bytes; :mod:`meerkat_runtime.store.sqlite_files` decides when the files
may be read (no other process using the database).
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field

WAL_HEADER_BYTES = 32
FRAME_HEADER_BYTES = 24
WAL_MAGIC = 0x377F0682
WAL_VERSION = 3007000
SHM_HEADER_BYTES = 48
SHM_NEEDED_BYTES = 100
"""Both copies of the wal-index header and ``nBackfill``."""

_MASK = 0xFFFFFFFF


def wal_checksum(data: bytes, seed: tuple[int, int], big_endian: bool) -> tuple[int, int]:
    """SQLite's cumulative WAL checksum of ``data`` (a multiple of 8 bytes) from ``seed``.

    Sixteen words per loop step, reduced modulo 2**32 once per step (the sums stay small)."""
    order = ">" if big_endian else "<"
    s1, s2 = seed
    cut = len(data) - len(data) % 64
    for a, b, c, d, e, f, g, h, i, j, k, m, n, o, p, q in struct.iter_unpack(f"{order}16I", data[:cut]):
        s1 += a + s2
        s2 += b + s1
        s1 += c + s2
        s2 += d + s1
        s1 += e + s2
        s2 += f + s1
        s1 += g + s2
        s2 += h + s1
        s1 += i + s2
        s2 += j + s1
        s1 += k + s2
        s2 += m + s1
        s1 += n + s2
        s2 += o + s1
        s1 += p + s2
        s2 += q + s1
        s1 &= _MASK
        s2 &= _MASK
    rest = struct.unpack(f"{order}{(len(data) - cut) // 4}I", data[cut:])
    for index in range(0, len(rest), 2):
        s1 = (s1 + rest[index] + s2) & _MASK
        s2 = (s2 + rest[index + 1] + s1) & _MASK
    return s1, s2


def valid_page_size(size: int) -> bool:
    return 512 <= size <= 65536 and size & (size - 1) == 0


@dataclass(frozen=True, slots=True)
class WalIndexHeader:
    """What the wal-index (``-shm``) of the last writer recorded."""

    max_frame: int
    backfilled: int
    salts: bytes


def read_wal_index(shm: bytes | None) -> WalIndexHeader | None:
    """The wal-index header if ``shm`` holds a valid one (both copies equal, initialised, version
    and checksum right), else ``None``."""
    if shm is None or len(shm) < SHM_NEEDED_BYTES:
        return None
    first, second = shm[:SHM_HEADER_BYTES], shm[SHM_HEADER_BYTES : 2 * SHM_HEADER_BYTES]
    native = "<" if sys.byteorder == "little" else ">"
    version = struct.unpack_from(f"{native}I", first, 0)[0]
    if first != second or version != WAL_VERSION or first[12] != 1:
        return None
    big = sys.byteorder == "big"
    if wal_checksum(first[:40], (0, 0), big) != struct.unpack_from(f"{native}2I", first, 40):
        return None
    max_frame = struct.unpack_from(f"{native}I", first, 16)[0]
    backfilled = struct.unpack_from(f"{native}I", shm, 96)[0]
    return WalIndexHeader(max_frame, backfilled, bytes(first[32:40]))


@dataclass(frozen=True, slots=True)
class WalReport:
    """What :func:`analyse_wal` found. ``problems`` empty means SQLite will recover every commit
    the files hold evidence of; each problem names the frames and commits that would be lost."""

    wal_bytes: int
    page_size: int | None = None
    header_valid: bool = False
    frames: int = 0
    """Complete frames in the file."""
    recovered_frames: int = 0
    """Frames SQLite will use: up to its last valid commit frame."""
    commits: int = 0
    """Valid commit frames among them."""
    first_bad_frame: int | None = None
    lost_commit_frames: tuple[int, ...] = ()
    """Genuine commit frames after the first bad frame (SQLite would drop them)."""
    recorded_frames: int | None = None
    """``mxFrame`` of a valid wal-index of the same generation, if there is one."""
    torn_tail: bool = False
    """Bad or incomplete frames only at the end (an unacknowledged commit cut short)."""
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(slots=True)
class _Frame:
    number: int
    page: int
    commit_size: int
    salts: bytes
    stored: tuple[int, int]
    body: bytes
    """The first 8 header bytes and the page: what the checksum covers."""


def _frames(wal: bytes, page_size: int) -> list[_Frame]:
    size = FRAME_HEADER_BYTES + page_size
    found: list[_Frame] = []
    for number, offset in enumerate(range(WAL_HEADER_BYTES, len(wal) - size + 1, size), start=1):
        header = wal[offset : offset + FRAME_HEADER_BYTES]
        page, commit_size = struct.unpack_from(">2I", header, 0)
        stored = struct.unpack_from(">2I", header, 16)
        body = header[:8] + wal[offset + FRAME_HEADER_BYTES : offset + size]
        found.append(_Frame(number, page, commit_size, bytes(header[8:16]), (stored[0], stored[1]), body))
    return found


def analyse_wal(wal: bytes | None, shm: bytes | None = None, *, db_page_size: int | None = None) -> WalReport:
    """Decide whether SQLite opening these files would silently drop committed frames.

    ``wal``: the ``-wal`` file (``None`` when it does not exist); ``shm``: the ``-shm`` file of
    the last writer if it exists (``None`` otherwise); ``db_page_size``: the database's page
    size, used when the log header's own is damaged.
    """
    index = read_wal_index(shm)
    if wal is None or len(wal) < WAL_HEADER_BYTES:
        size = 0 if wal is None else len(wal)
        problems: list[str] = []
        if index is not None and index.max_frame > index.backfilled:
            missing = "is missing" if wal is None else f"holds only {size} bytes (no complete header)"
            problems.append(
                f"the -wal file {missing}, but the -shm of the last writer records {index.max_frame} committed "
                f"frames of which {index.max_frame - index.backfilled} were not yet copied into the database"
            )
        return WalReport(size, problems=tuple(problems), torn_tail=0 < size < WAL_HEADER_BYTES and not problems)

    magic, version, header_page_size = struct.unpack_from(">3I", wal, 0)
    big_endian = bool(magic & 1)
    header_salts = bytes(wal[16:24])
    header_stored = struct.unpack_from(">2I", wal, 24)
    header_computed = wal_checksum(wal[:24], (0, 0), big_endian)
    header_valid = (
        magic in (WAL_MAGIC, WAL_MAGIC | 1)
        and version == WAL_VERSION
        and valid_page_size(header_page_size)
        and header_computed == header_stored
    )
    if valid_page_size(header_page_size):
        page_size: int | None = header_page_size
    elif db_page_size is not None and valid_page_size(db_page_size):
        page_size = db_page_size
    else:
        page_size = None
    notes: list[str] = []
    problems = []
    if page_size is None:
        notes.append("the log's page size is unreadable and the database's is unknown: frames not examined")
        frames: list[_Frame] = []
    else:
        frames = _frames(wal, page_size)
    trailing = 0 if page_size is None else (len(wal) - WAL_HEADER_BYTES) % (FRAME_HEADER_BYTES + page_size)

    # What SQLite will recover: valid frames from the start, up to the last valid commit.
    recovered = commits = 0
    first_bad: int | None = None
    running = (header_stored[0], header_stored[1])
    if header_valid:
        for frame in frames:
            if (
                frame.salts != header_salts
                or frame.page == 0
                or wal_checksum(frame.body, running, big_endian) != frame.stored
            ):
                first_bad = frame.number
                break
            running = frame.stored
            if frame.commit_size:
                recovered = frame.number
                commits += 1
    elif frames:
        first_bad = 1
        problems_header = "the log header is damaged (SQLite ignores the whole log)"
        notes.append(problems_header)

    # Genuine frames after the first bad one, and the commits among them.
    lost: list[int] = []
    if first_bad is not None:
        seeds_prev: tuple[tuple[int, int], ...]
        if first_bad == 1:
            seeds_prev = ((header_stored[0], header_stored[1]), header_computed)
        else:
            before = frames[first_bad - 2]
            seeds_prev = (before.stored,)
        generation = header_salts
        previous_genuine = header_valid or first_bad > 1
        for frame in frames[first_bad - 1 :]:
            candidates = {wal_checksum(frame.body, seed, big_endian) for seed in seeds_prev}
            chained = frame.stored in candidates
            if chained and frame.number == 1 and not header_valid:
                generation = frame.salts  # the header's salts may be the damaged part
            genuine = chained and frame.page != 0 and (frame.salts == generation or previous_genuine)
            if genuine and frame.commit_size:
                lost.append(frame.number)
            computed = wal_checksum(frame.body, seeds_prev[0], big_endian)
            seeds_prev = (frame.stored, computed)
            previous_genuine = genuine

    if lost:
        where = "after the damaged log header" if not header_valid else f"after bad frame {first_bad}"
        problems.append(
            f"{len(lost)} committed transaction(s) {where} would be dropped by SQLite "
            f"(commit frame(s) {_span(lost)} of {len(frames)}); SQLite would recover only {recovered} frame(s)"
        )
    stale = (
        not lost
        and header_valid
        and first_bad is not None
        and first_bad <= len(frames)
        and frames[first_bad - 1].salts != header_salts
    )
    if stale:
        notes.append(f"frames {first_bad}..{len(frames)} are left over from an earlier log generation (ignored)")
    torn = not lost and not stale and (first_bad is not None or trailing > 0)

    recorded: int | None = None
    if index is not None:
        if header_valid and index.salts == header_salts:
            recorded = index.max_frame
            shadowed = recovered > 0 or index.backfilled < index.max_frame
            if recovered < index.max_frame and shadowed and not lost:
                problems.append(
                    f"the log holds {recovered} committed frame(s), but the -shm of the last writer records "
                    f"{index.max_frame}: the commits in frames {recovered + 1}..{index.max_frame} are lost "
                    "(the log was truncated or its last commit frame damaged)"
                )
        elif index.max_frame > index.backfilled:
            why = "its header is damaged" if not header_valid else "it belongs to another log generation"
            if not lost:
                problems.append(
                    f"the -shm of the last writer records {index.max_frame} committed frame(s) "
                    f"({index.max_frame - index.backfilled} not yet copied into the database) of a log the -wal "
                    f"file no longer holds ({why})"
                )
    return WalReport(
        wal_bytes=len(wal),
        page_size=page_size,
        header_valid=header_valid,
        frames=len(frames),
        recovered_frames=recovered,
        commits=commits,
        first_bad_frame=first_bad,
        lost_commit_frames=tuple(lost),
        recorded_frames=recorded,
        torn_tail=torn and not problems,
        problems=tuple(problems),
        notes=tuple(notes),
    )


def _span(numbers: list[int]) -> str:
    return str(numbers[0]) if len(numbers) == 1 else f"{numbers[0]}..{numbers[-1]}"
