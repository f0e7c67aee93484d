"""``meerkat-runtime sessions STORE``: every session a store holds, with its lifecycle state, its
input counts per status, its quarantine and its lease. Reads only."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from meerkat_runtime.cli.store_arg import add_store_arguments, with_read_only_store
from meerkat_runtime.cli.table import id_cell, render_table, when
from meerkat_runtime.cli.usage import EXIT_OK
from meerkat_runtime.inspection.sessions import SessionSummary, summarize_sessions
from meerkat_runtime.store.lease import Lease
from meerkat_runtime.store.protocol import RuntimeStore

NAME = "sessions"
HELP = "list the sessions of a store: lifecycle state, inputs per status, quarantine, lease; reads only"
PROG = f"meerkat-runtime {NAME}"
READ_ONLY_NOTE = (
    "Reads only: an SQLite file is opened read-only (nothing written, no -wal or -shm created, no lease claimed); "
    "a PostgreSQL store through read-only transactions."
)


def configure(parser: argparse.ArgumentParser) -> None:
    add_store_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    parser.epilog = (
        f"STATE is the stored lifecycle phase ('-': none stored yet). {READ_ONLY_NOTE} "
        "exit status: 0 listed (also when the store holds no session); 1 the store could not be opened or read "
        "(damaged, an older schema version: see 'migrate', a server error); 2 usage error (e.g. STORE does not "
        "exist); 130 interrupted (Ctrl-C)"
    )


def lease_text(lease: Lease | None, now: float) -> str:
    if lease is None:
        return "-"
    if lease.expired(now):
        return f"{lease.owner} (token {lease.token}, free since {when(lease.expires_at)})"
    return f"{lease.owner} (token {lease.token}, held until {when(lease.expires_at)})"


def lease_json(lease: Lease | None) -> dict[str, Any] | None:
    if lease is None:
        return None
    return {"owner": lease.owner, "token": lease.token, "expires_at": lease.expires_at}


def _json(found: list[SessionSummary]) -> dict[str, Any]:
    return {
        "sessions": [
            {
                "session_id": s.session_id,
                "runtime_id": s.runtime_id,
                "state": s.state,
                "inputs": s.input_count,
                "by_status": s.inputs,
                "quarantined": s.quarantined,
                "lease": lease_json(s.lease),
                "problems": list(s.problems),
            }
            for s in found
        ]
    }


def _text(found: list[SessionSummary]) -> str:
    if not found:
        return "no sessions stored"
    now = time.time()
    rows = [
        (
            id_cell(s.session_id),
            s.state or "-",
            s.input_count,
            " ".join(f"{status}={n}" for status, n in s.inputs.items()) or "-",
            s.quarantined,
            lease_text(s.lease, now),
        )
        for s in found
    ]
    lines = [render_table(("SESSION", "STATE", "INPUTS", "BY STATUS", "QUARANTINED", "LEASE"), rows)]
    lines += [f"PROBLEM: session {s.session_id!r}: {p}" for s in found for p in s.problems]
    lines.append(f"{len(found)} session(s)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    def work(store: RuntimeStore) -> int:
        found = summarize_sessions(store)
        print(json.dumps(_json(found), indent=2) if args.json else _text(found))
        return EXIT_OK

    return with_read_only_store(PROG, args, work)
