"""``meerkat-runtime show STORE INPUT``: one stored input in full — its row as stored (header,
input, lifecycle fields, outcome, last error) and its history — found in whichever session holds
it, or in the quarantine. Reads only."""

from __future__ import annotations

import argparse
import json
from typing import Any

from meerkat_runtime.cli.session_arg import stored_runtime_id
from meerkat_runtime.cli.sessions import READ_ONLY_NOTE
from meerkat_runtime.cli.store_arg import add_store_arguments, with_read_only_store
from meerkat_runtime.cli.table import id_cell, render_table, when
from meerkat_runtime.cli.usage import EXIT_OK, failure, usage_error
from meerkat_runtime.inspection.inputs import (
    FoundInput,
    find_input,
    quarantined_summary,
    stored_document,
    summary,
)
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.ids import session_id_of

NAME = "show"
HELP = "show one stored input in full: its row, history, outcome and last error; reads only"
PROG = f"meerkat-runtime {NAME}"


def configure(parser: argparse.ArgumentParser) -> None:
    add_store_arguments(parser)
    parser.add_argument("input_id", metavar="INPUT", help="the input id (as 'inputs' lists it)")
    parser.add_argument(
        "--session", metavar="SESSION", help="look only in this session (default: every session of the store)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.epilog = (
        f"{READ_ONLY_NOTE} exit status: 0 shown (also a damaged or quarantined row: its status says so); 1 no "
        "session holds the input (or the input is in several sessions: name one with --session), no such "
        "--session, or the store could not be opened or read; 2 usage error (e.g. STORE does not exist, an empty "
        "INPUT, a malformed --session); 130 interrupted (Ctrl-C)"
    )


def _json(found: FoundInput) -> dict[str, Any]:
    doc: dict[str, Any] = {"session_id": session_id_of(found.runtime_id), "runtime_id": found.runtime_id}
    if found.quarantined is not None:
        q = found.quarantined
        return doc | quarantined_summary(q) | {"row": stored_document(q.payload)}
    assert found.stored is not None
    return doc | summary(found.stored) | {"intact": found.stored.intact, "row": stored_document(found.stored.payload)}


def _text(found: FoundInput) -> str:
    doc = _json(found)
    row = doc.pop("row")
    lines = [f"input {doc.pop('input_id')} of session {doc.pop('session_id')!r}"]
    doc.pop("runtime_id")
    for key, value in doc.items():
        if key.endswith("_at") and isinstance(value, float):
            value = f"{when(value)} ({value})"
        lines.append(f"  {key}: {'-' if value is None else json.dumps(value) if isinstance(value, dict) else value}")
    if isinstance(row, dict):
        lines.append(f"  input: {json.dumps(row.get('input'), ensure_ascii=False)}")
        history = row.get("history") or []
        if history:
            lines.append("  history:")
            table = [(when(e.get("at")), e.get("from") or "-", e.get("to"), e.get("reason")) for e in history]
            lines.extend("    " + line for line in render_table(("AT", "FROM", "TO", "REASON"), table).splitlines())
    else:
        lines.append(f"  stored bytes (not JSON): {row!r}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if not args.input_id.strip():
        return usage_error(PROG, "INPUT must not be empty")

    def work(store: RuntimeStore) -> int:
        wanted = args.session
        runtimes = store.list_runtimes() if wanted is None else [stored_runtime_id(store, wanted)]
        found = find_input(store, args.input_id, runtimes)
        if not found:
            where = f"session {args.session!r}" if args.session is not None else f"any of {len(runtimes)} session(s)"
            return failure(PROG, f"no input {args.input_id!r} is stored in {where}")
        sessions = sorted({session_id_of(f.runtime_id) for f in found})
        if len(sessions) > 1:
            named = ", ".join(map(id_cell, sessions))
            return failure(
                PROG,
                f"input {args.input_id!r} is stored in {len(sessions)} sessions ({named}); name one with --session",
            )
        shown = [_json(f) for f in found] if args.json else [_text(f) for f in found]
        if args.json:
            print(json.dumps(shown[0] if len(shown) == 1 else shown, indent=2, ensure_ascii=False))
        else:
            print("\n\n".join(str(s) for s in shown))
        return EXIT_OK

    return with_read_only_store(PROG, args, work)
