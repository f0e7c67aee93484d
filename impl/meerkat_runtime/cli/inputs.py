"""``meerkat-runtime inputs STORE SESSION``: a session's stored inputs with their status,
attempts, last error and result, and its quarantined rows. Reads only."""

from __future__ import annotations

import argparse
import json
from typing import Any

from meerkat_runtime.cli.session_arg import add_session_argument, stored_runtime_id
from meerkat_runtime.cli.sessions import READ_ONLY_NOTE
from meerkat_runtime.cli.store_arg import add_store_arguments, with_read_only_store
from meerkat_runtime.cli.table import clip, render_table, when
from meerkat_runtime.cli.usage import EXIT_OK
from meerkat_runtime.inspection.inputs import (
    DAMAGED,
    QUARANTINED,
    UNREADABLE,
    StoredInput,
    quarantined_summary,
    session_inputs,
    summary,
)
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.inputs import InputLifecycleState

NAME = "inputs"
HELP = "list a session's stored inputs: status, attempts, last error, result; reads only"
PROG = f"meerkat-runtime {NAME}"
STATUSES = (*(s.value for s in InputLifecycleState), DAMAGED, UNREADABLE, QUARANTINED)


def configure(parser: argparse.ArgumentParser) -> None:
    add_store_arguments(parser)
    add_session_argument(parser)
    parser.add_argument(
        "--status",
        action="append",
        choices=STATUSES,
        metavar="STATUS",
        help=f"only inputs with this status (repeatable; one of: {', '.join(STATUSES)}; default: every status)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    parser.epilog = (
        f"Inputs are listed by input id; quarantined rows after them. {READ_ONLY_NOTE} "
        "exit status: 0 listed; 1 the store holds no such session, or could not be opened or read; "
        "2 usage error (e.g. STORE does not exist, a malformed SESSION); 130 interrupted (Ctrl-C)"
    )


def outcome_text(stored: StoredInput) -> str:
    """What an input came to, or why it cannot be read, on one line."""
    record = stored.record
    if record is None:
        return stored.problem or ""
    parts = []
    outcome = record.outcome
    if outcome is not None:
        result = getattr(outcome, "result", None)
        parts.append(f"{outcome.kind}: {result.text!r}" if result is not None else outcome.kind)
    elif record.terminal is not None:
        parts.append(type(record.terminal).__name__.lower())
    if record.last_error is not None:
        parts.append(f"last error {record.last_error.error_type}: {record.last_error.message}")
    return clip("; ".join(parts)) or "-"


def run(args: argparse.Namespace) -> int:
    wanted = set(args.status or STATUSES)

    def work(store: RuntimeStore) -> int:
        runtime_id = stored_runtime_id(store, args.session)
        rows = [s for s in session_inputs(store, runtime_id) if s.status in wanted]
        moved = store.load_quarantined(runtime_id) if QUARANTINED in wanted else []
        if args.json:
            doc: dict[str, Any] = {
                "session_id": args.session,
                "runtime_id": runtime_id,
                "inputs": [summary(s) for s in rows],
                "quarantined": [quarantined_summary(q) for q in moved],
            }
            print(json.dumps(doc, indent=2))
            return EXIT_OK
        table = [
            (
                s.input_id,
                s.status,
                s.record.input.kind if s.record else "-",
                s.record.attempts if s.record else "-",
                when(s.record.updated_at) if s.record else "-",
                outcome_text(s),
            )
            for s in rows
        ]
        table += [(q.input_id, QUARANTINED, "-", "-", when(q.quarantined_at), clip(q.reason)) for q in moved]
        if table:
            print(render_table(("INPUT", "STATUS", "KIND", "ATTEMPTS", "UPDATED", "RESULT / LAST ERROR"), table))
        print(f"{len(rows)} input(s), {len(moved)} quarantined, in session {args.session!r}")
        return EXIT_OK

    return with_read_only_store(PROG, args, work)
