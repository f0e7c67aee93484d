"""``meerkat-runtime check PATH``: examine a store file for damage without writing anything.

Reports the write-ahead log (commits SQLite would silently drop), the schema version, SQLite's
``integrity_check``, every row's checksum, every runtime's high-water mark against its rows,
and, per session, the input rows its recovery would refuse (with what is wrong, for
``meerkat-runtime quarantine``). Recovery fields beside a queued input's row that fail their
check are warnings: recovery decodes that row in full instead, so they do not change the exit
status. Nothing is written: not the database, its log or its
wal-index (:mod:`meerkat_runtime.store.sqlite_readonly`).

A file of an older release gets the file-level checks, but its sessions are not diagnosed (this
release's recovery reads its own schema only): the report says so and ends ``INCOMPLETE`` (exit
status 3) unless damage was found. A file of a newer release is refused, as the other commands
refuse it (exit status 1, nothing on stdout): this release cannot tell its rows from damage.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from meerkat_runtime.cli.usage import EXIT_FAILED, EXIT_OK, existing_file, failure
from meerkat_runtime.repair.diagnosis import SessionDiagnosis, diagnose_session
from meerkat_runtime.session.packed_record import queued_problem
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.sqlite_check import FileReport, check_file
from meerkat_runtime.store.sqlite_schema import SCHEMA_VERSION
from meerkat_runtime.vocab.errors import MeerkatError
from meerkat_runtime.vocab.ids import CANONICAL_RUNTIME_PREFIX

NAME = "check"
PROG = f"meerkat-runtime {NAME}"
EXIT_INCOMPLETE = 3
"""No damage found in what was checked, but the sessions were not diagnosed (an older release's file)."""
HELP = "examine a store file for damage (log, pages, rows, high-water marks, sessions); never writes"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", type=existing_file, help="the SQLite store file")
    parser.add_argument(
        "--integrity",
        choices=("full", "quick"),
        default="full",
        help="SQLite's check: full = PRAGMA integrity_check (also indexes against tables), "
        "quick = PRAGMA quick_check (default: full)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.epilog = (
        "Nothing is written, and no -wal or -shm file is created. "
        "exit status: 0 no damage found (a WARNING is damage recovery works around); "
        "1 damage found (every problem is listed), or the file was written by a newer release (refused: this "
        "release cannot check it); 2 usage error (e.g. PATH does not exist); 3 incomplete: no damage found, but "
        "the file was written by an older release and its sessions were not diagnosed (run meerkat-runtime "
        "migrate PATH, then check again); 130 interrupted (Ctrl-C)"
    )


def _older(report: FileReport) -> bool:
    """Whether the file is a store of an older release (its sessions cannot be diagnosed)."""
    return report.schema_version is not None and 0 < report.schema_version < SCHEMA_VERSION


def _not_diagnosed(report: FileReport) -> str:
    """Why an older release's sessions were not diagnosed, and what to do."""
    return (
        f"sessions not diagnosed: schema version {report.schema_version} is older than this release's "
        f"({SCHEMA_VERSION}); stop the older release's workers, upgrade the file with `meerkat-runtime migrate "
        "PATH`, then check it again"
    )


def _sessions(report: FileReport, problems: list[str]) -> tuple[int, list[SessionDiagnosis]]:
    """Diagnose every session of a current-version file; return how many and the unhealthy ones."""
    if report.schema_version != SCHEMA_VERSION:
        return 0, []
    ids = sorted(
        r.runtime_id[len(CANONICAL_RUNTIME_PREFIX) :]
        for r in report.runtimes
        if r.runtime_id.startswith(CANONICAL_RUNTIME_PREFIX) and len(r.runtime_id) > len(CANONICAL_RUNTIME_PREFIX)
    )
    unhealthy: list[SessionDiagnosis] = []
    try:
        store = SqliteRuntimeStore(report.path, read_only=True, integrity_check="off", wal_check=False)
    except MeerkatError as exc:
        problems.append(f"sessions not examined: {exc}")
        return 0, []
    try:
        for session_id in ids:
            try:
                found = diagnose_session(store, session_id)
            except MeerkatError as exc:
                problems.append(f"session {session_id!r}: {exc}")
                continue
            if not found.healthy:
                unhealthy.append(found)
                problems.extend(_session_problems(found))
    finally:
        store.close()
    return len(ids), unhealthy


def _session_problems(found: SessionDiagnosis) -> list[str]:
    where = f"session {found.session_id!r}"
    lines = [f"{where}: input {b.input_id!r}: {b.problem}" for b in found.bad_rows]
    lines += [f"{where}: high-water mark: {p}" for p in found.mark_problems]
    lines += [f"{where}: {p}" for p in found.other_problems]
    return lines


def _as_json(report: FileReport, checked: int, unhealthy: list[SessionDiagnosis], problems: list[str]) -> Any:
    wal = None if report.wal is None else asdict(report.wal)
    older = _older(report)
    return {
        "path": report.path,
        "ok": not problems and not older,
        "complete": not older,
        "incomplete": _not_diagnosed(report) if older else None,
        "problems": problems,
        "notes": list(report.notes),
        "warnings": list(report.warnings),
        "in_use": report.in_use,
        "opened_as": report.opened_as,
        "schema_version": report.schema_version,
        "wal": wal,
        "integrity": list(report.integrity),
        "damaged_rows": report.damaged_rows,
        "damaged_examples": list(report.damaged_examples),
        "runtimes": [
            {
                "runtime_id": r.runtime_id,
                "mark": None if r.mark is None else asdict(r.mark),
                "counted": r.counted,
                "problems": list(r.problems),
            }
            for r in report.runtimes
        ],
        "sessions_checked": checked,
        "sessions": [
            {
                "session_id": s.session_id,
                "rows": s.rows,
                "bad_rows": [
                    {"input_id": b.input_id, "problem": b.problem, "intact": b.intact, "bytes": len(b.payload)}
                    for b in s.bad_rows
                ],
                "mark_problems": list(s.mark_problems),
                "other_problems": list(s.other_problems),
                "quarantined": len(s.quarantined),
            }
            for s in unhealthy
        ],
    }


def _text(report: FileReport, checked: int, problems: list[str]) -> str:
    lines = [f"check {report.path}"]
    wal = report.wal
    if wal is None:
        lines.append("  write-ahead log: not examined")
    elif wal.wal_bytes == 0:
        lines.append("  write-ahead log: none (every commit is in the database file)")
    else:
        lines.append(
            f"  write-ahead log: {wal.frames} frames, {wal.commits} commits SQLite recovers"
            + (f", the last writer recorded {wal.recorded_frames} frames" if wal.recorded_frames is not None else "")
        )
    lines.append(f"  schema version: {report.schema_version} (this release: {SCHEMA_VERSION})")
    if not report.schema_version:
        lines.append("  integrity check, row checksums: not run (no store schema could be read)")
    else:
        lines.append(f"  integrity check: {'ok' if not report.integrity else f'{len(report.integrity)} finding(s)'}")
        lines.append(f"  row checksums: {report.damaged_rows} damaged")
    lines.extend(f"    {row}" for row in report.damaged_examples)
    marked = sum(1 for r in report.runtimes if r.mark is not None)
    lines.append(f"  runtimes: {len(report.runtimes)} ({marked} with a high-water mark)")
    lines.append(f"  {_not_diagnosed(report)}" if _older(report) else f"  sessions: {checked} diagnosed")
    lines.extend(f"  note: {note}" for note in report.notes)
    lines.extend(f"  WARNING: {warning}" for warning in report.warnings)
    lines.extend(f"  PROBLEM: {problem}" for problem in problems)
    warned = f" ({len(report.warnings)} warning(s))" if report.warnings else ""
    if problems:
        lines.append(f"DAMAGED: {len(problems)} problem(s){warned}")
    elif _older(report):
        lines.append(f"INCOMPLETE: no damage found in the file, but its sessions were not diagnosed{warned}")
    else:
        lines.append(f"OK: no damage found{warned}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    report = check_file(args.path, integrity=args.integrity, fields_check=queued_problem)
    if report.schema_version is not None and report.schema_version > SCHEMA_VERSION:
        return failure(
            PROG,
            f"{args.path!r} has schema version {report.schema_version}, written by a newer release (this one knows "
            f"{SCHEMA_VERSION}); it cannot tell that release's rows from damage: check it with that release's "
            "meerkat-runtime (nothing was examined further)",
        )
    problems = list(report.problems)
    checked, unhealthy = _sessions(report, problems)
    if args.json:
        json.dump(_as_json(report, checked, unhealthy, problems), sys.stdout, indent=2, default=repr)
        print()
    else:
        print(_text(report, checked, problems))
    if problems:
        return EXIT_FAILED
    return EXIT_INCOMPLETE if _older(report) else EXIT_OK
