"""``meerkat-runtime quarantine PATH SESSION INPUT_ID``: set one stored input row aside so the
rest of its session recovers.

The row (whatever is wrong with it) is moved into the store's quarantine in one transaction,
its stored bytes kept (:func:`meerkat_runtime.repair.quarantine.quarantine_input`). Find the
rows to move with ``meerkat-runtime check PATH``. The session must not be running: a worker
holding its lease makes this fail (exit 1) without changing anything.

The file is read through a read-only store first: an empty file, another application's
database, a schema version older (upgrade it with ``meerkat-runtime migrate``) or newer than
this release's, an unknown session or input id, a high-water mark that refuses the move, a live
worker's lease are refused (exit 1) with the file untouched
(its bytes and modification time; no ``-wal`` or ``-shm`` created). Only then is it opened
for writing.
"""

from __future__ import annotations

import argparse
import json
import time

from meerkat_runtime.cli.session_arg import stored_runtime_id
from meerkat_runtime.cli.store_arg import open_refusal
from meerkat_runtime.cli.usage import EXIT_OK, existing_file, failure, usage_error
from meerkat_runtime.repair.quarantine import REPAIR_LEASE_S, REPAIR_OWNER, quarantine_input
from meerkat_runtime.store.high_water import quarantine_refusal, quarantine_refused
from meerkat_runtime.store.lease import claim_outcome
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.sqlite import SqliteRuntimeStore, refuse_damaged_log
from meerkat_runtime.store.sqlite_schema import NotAMeerkatStore
from meerkat_runtime.vocab.errors import LeaseHeld, MeerkatError, OwnershipLost, RowNotStored, ValidationFailed

NAME = "quarantine"
HELP = "move one stored input row of a session into the quarantine (its bytes kept) so the rest recovers"
DEFAULT_REASON = "quarantined with meerkat-runtime quarantine"
PROG = f"meerkat-runtime {NAME}"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", type=existing_file, help="the SQLite store file")
    parser.add_argument("session", metavar="SESSION", help="the session id (without the rt:session: prefix)")
    parser.add_argument("input_id", metavar="INPUT_ID", help="the id of the input row to move")
    parser.add_argument(
        "--reason", default=DEFAULT_REASON, help=f"why, kept with the row (default: {DEFAULT_REASON!r})"
    )
    parser.add_argument("--json", action="store_true", help="print the moved row as one JSON document")
    parser.epilog = (
        f"The move is one transaction, made under the session's lease (claimed as {REPAIR_OWNER!r} and released) "
        "when the session has one. exit status: 0 the row was moved; 1 nothing was moved (the file is not a store, "
        "its schema version is older (upgrade it with 'migrate') or newer than this release's, no such session or row: "
        "then the file is left untouched; "
        "the row is quarantined already, the session's high-water mark is missing or counts other rows than are "
        "stored (restore a backup), a worker "
        "holds the session's lease, the store refused the move for another reason, or the file is damaged: "
        "the reason is printed); 2 usage error; "
        "130 interrupted (Ctrl-C)"
    )


def _not_moved(store: RuntimeStore, runtime_id: str, session: str, input_id: str) -> str:
    """Why the store refused to move ``input_id`` for want of the row: it holds no such row, or
    moved it already."""
    try:
        earlier = [row for row in store.load_quarantined(runtime_id) if row.input_id == input_id]
    except MeerkatError:
        earlier = []
    if earlier:
        return (
            f"input {input_id!r} of session {session!r} is already quarantined (reason: {earlier[-1].reason!r}); "
            "nothing was moved"
        )
    return f"session {session!r} holds no input {input_id!r}; nothing was moved"


def _checked_read_only(args: argparse.Namespace) -> int | None:
    """The exit status of a quarantine refused before anything is written (the store read
    through a read-only store: not a store, another schema version, no such session or input
    row, a high-water mark that refuses the move, a live worker's lease); ``None`` when the
    move may be tried."""
    prog = PROG
    try:
        refuse_damaged_log(args.path)  # the read-only store reads what SQLite recovers of the log
        reader = SqliteRuntimeStore(args.path, read_only=True, integrity_check="off")
    except NotAMeerkatStore as exc:
        return failure(prog, exc.detail)
    except MeerkatError as exc:
        return failure(prog, open_refusal(args.path, exc))
    try:
        runtime_id = stored_runtime_id(reader, args.session)
        stored = {row.input_id for row in reader.scan_input_states(runtime_id)}
        if args.input_id not in stored:
            return failure(prog, _not_moved(reader, runtime_id, args.session, args.input_id))
        if refusal := quarantine_refusal(reader.load_high_water(runtime_id), len(stored)):
            raise quarantine_refused(runtime_id, refusal)
        # ``LeaseHeld`` when a live worker holds the session (the claim itself decides later)
        claim_outcome(runtime_id, reader.load_lease(runtime_id), REPAIR_OWNER, REPAIR_LEASE_S, time.time())
    except ValidationFailed as exc:
        return usage_error(prog, exc)
    except MeerkatError as exc:
        return failure(prog, exc)
    finally:
        reader.close()
    return None


def run(args: argparse.Namespace) -> int:
    prog = PROG
    if not args.input_id.strip():
        return usage_error(prog, "INPUT_ID must not be empty")
    if not args.reason.strip():
        return usage_error(prog, "--reason must not be empty")
    refused = _checked_read_only(args)
    if refused is not None:
        return refused
    try:
        store = SqliteRuntimeStore(args.path)
    except MeerkatError as exc:
        return failure(prog, exc)
    try:
        runtime_id = stored_runtime_id(store, args.session)
        moved = quarantine_input(store, args.session, args.input_id, args.reason)
    except ValidationFailed as exc:
        return usage_error(prog, exc)
    except (LeaseHeld, OwnershipLost) as exc:
        return failure(prog, exc)
    except RowNotStored:
        return failure(prog, _not_moved(store, runtime_id, args.session, args.input_id))
    except MeerkatError as exc:
        return failure(prog, exc)
    finally:
        store.close()
    if args.json:
        doc = {
            "session_id": args.session,
            "input_id": moved.input_id,
            "bytes": len(moved.payload),
            "intact": moved.intact,
            "reason": moved.reason,
            "quarantined_at": moved.quarantined_at,
        }
        print(json.dumps(doc, indent=2))
    else:
        state = "passed" if moved.intact else "FAILED"
        print(
            f"moved input {moved.input_id!r} of session {args.session!r} into the quarantine "
            f"({len(moved.payload)} bytes kept; its checksum {state})"
        )
    return EXIT_OK
