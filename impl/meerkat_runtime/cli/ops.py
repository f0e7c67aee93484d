"""``meerkat-runtime ops STORE SESSION``: the operation registry a session's store holds (the last
snapshot with the journal records since replayed, as recovery reads it). Reads only."""

from __future__ import annotations

import argparse
import json
from typing import Any

from meerkat_runtime.cli.session_arg import add_session_argument, stored_runtime_id
from meerkat_runtime.cli.sessions import READ_ONLY_NOTE
from meerkat_runtime.cli.store_arg import add_store_arguments, with_read_only_store
from meerkat_runtime.cli.table import clip, render_table, when
from meerkat_runtime.cli.usage import EXIT_OK
from meerkat_runtime.inspection.operations import operation_summary, stored_operations
from meerkat_runtime.store.protocol import RuntimeStore

NAME = "ops"
HELP = "list the operations a session's store holds (status, completion sequence, outcome); reads only"
PROG = f"meerkat-runtime {NAME}"


def configure(parser: argparse.ArgumentParser) -> None:
    add_store_arguments(parser)
    add_session_argument(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    parser.epilog = (
        "Operations are listed in registration order. Recovery keeps the terminal ones and drops the others "
        f"(their tasks died with the process). {READ_ONLY_NOTE} "
        "exit status: 0 listed (also when no operation is stored); 1 the store holds no such session, its "
        "operation state is damaged or malformed, or the store could not be opened or read; 2 usage error "
        "(e.g. STORE does not exist, a malformed SESSION); 130 interrupted (Ctrl-C)"
    )


def _outcome(doc: dict[str, Any]) -> str:
    outcome = doc["outcome"]
    if outcome is None:
        return "-"
    detail = outcome.get("error") or outcome.get("reason") or (outcome.get("result") or {}).get("content")
    return clip(f"{outcome['outcome_type']}: {detail}" if detail else str(outcome["outcome_type"]), 50)


def run(args: argparse.Namespace) -> int:
    def work(store: RuntimeStore) -> int:
        runtime_id = stored_runtime_id(store, args.session)
        found = stored_operations(store, runtime_id)
        state = found.state
        ops = [] if state is None else [operation_summary(op) for op in state.operations]
        if args.json:
            doc = {
                "session_id": args.session,
                "runtime_id": runtime_id,
                "epoch_id": None if state is None else state.epoch_id,
                "next_completion_seq": None if state is None else state.next_completion_seq,
                "snapshot_stored": found.snapshot_stored,
                "journal_records": found.journal_records,
                "mark_problem": found.mark_problem,
                "operations": ops,
            }
            print(json.dumps(doc, indent=2))
            return EXIT_OK
        if state is None:
            print(f"no operations stored for session {args.session!r}")
        else:
            rows = [
                (
                    d["operation_id"],
                    d["kind"],
                    d["status"],
                    d["completion_seq"] if d["completion_seq"] is not None else "-",
                    when(d["completed_at_ms"] / 1000) if d["completed_at_ms"] is not None else "-",
                    _outcome(d),
                    clip(d["display_name"], 30),
                )
                for d in ops
            ]
            if rows:
                print(render_table(("OPERATION", "KIND", "STATUS", "SEQ", "COMPLETED", "OUTCOME", "NAME"), rows))
            print(
                f"{len(ops)} operation(s) in epoch {state.epoch_id}; next completion sequence "
                f"{state.next_completion_seq}; {found.journal_records} journal record(s) since the last snapshot"
            )
        if found.mark_problem is not None:
            print(f"PROBLEM: high-water mark: {found.mark_problem}")
        return EXIT_OK

    return with_read_only_store(PROG, args, work)
