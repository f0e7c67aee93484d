"""``meerkat-conformance check-trace FILE...``: check recorded event logs against the model.

    meerkat-conformance check-trace [--json] FILE_OR_DIR...

Each argument is an event log written by ``meerkat_runtime.events.jsonl.EventLog`` (JSON Lines),
or a directory of them (with their rotated predecessors). The trace is accepted when the
reference model explains every event; otherwise the first event it cannot explain is printed
with the model's state before it and the transitions the model had enabled.

Exit status: 0 accepted (every event checked and explained); 1 rejected (an event the model
cannot explain); 2 usage error or nothing to check (no file, a directory without event logs —
subdirectories are not read —, an unreadable file, a line that is not an event other than a torn
last line, no event at all); 3 incomplete (a runtime's log starts after its first event: rotated
away or missing; the other runtimes are still checked, and a rejection among them gives 1);
4 interleaved (a superseded worker reconciled after another took the session over, and the
model could not place that reconcile in fence order; its later events are left out, every other
event is checked and none rejected; 4 wins over 3); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from meerkat_model.cli.usage import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, OneLineParser, UsageError, usage_error

PROG = "meerkat-conformance check-trace"
EXIT_INCOMPLETE = 3
"""A runtime's history does not start at its first event: it could not be replayed."""
EXIT_INTERLEAVED = 4
"""A runtime's log holds overlapping events of several workers that cannot be replayed as one history."""


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG,
        description="Replay recorded lifecycle events (JSON Lines event logs) through the reference model: "
        "accept the trace, or name the first event the model cannot explain.",
        epilog="Directories are not read recursively. A torn last line of a file (no newline at its end: a crash "
        "while it was written) is reported as a note and not checked.\n"
        "exit status: 0 the model explains every event; 1 an event it cannot explain (printed with the "
        "model's state and its enabled transitions); 2 usage error, a malformed log, or nothing to check (no "
        "event file, no event); 3 incomplete: a runtime's log does not start at its first event (rotated away "
        "or missing), so it cannot be replayed; 4 interleaved: a superseded worker's reconcile, published after "
        "another worker took the session over, cannot be placed in fence order (left out with the worker's later "
        "events; nothing rejected); 130 interrupted",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="FILE", type=Path, help="event log files or directories of them")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON on stdout")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from meerkat_conformance.trace.check import check_trace
    from meerkat_conformance.trace.reader import NoEventFiles, TraceFormatError
    from meerkat_conformance.trace.report import verdict_json, verdict_text

    try:
        for path in args.paths:
            if not path.exists():
                raise UsageError(f"no such file or directory: {path}")
        verdict = check_trace(list(args.paths))
        if verdict.events == 0:
            notes = "".join(f"; {note}" for note in verdict.notes)
            raise UsageError(f"nothing to check: no events in {verdict.files} file(s){notes}")
    except (UsageError, TraceFormatError, NoEventFiles, OSError, UnicodeDecodeError) as exc:
        return usage_error(PROG, UsageError(str(exc)) if not isinstance(exc, UsageError) else exc)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps(verdict_json(verdict), indent=2, sort_keys=True, default=str))
    else:
        print(verdict_text(verdict))
    if verdict.rejection is not None:
        return EXIT_FAILED
    if verdict.interleaved:
        return EXIT_INTERLEAVED
    return EXIT_INCOMPLETE if verdict.incomplete else EXIT_OK
