"""``meerkat-conformance check-trace FILE...``: check recorded event logs against the model.

    meerkat-conformance check-trace [--json] FILE_OR_DIR...

Each argument is an event log written by ``meerkat_runtime.events.jsonl.EventLog`` (JSON Lines),
or a directory of them (with their rotated predecessors). The trace is accepted when the
reference model explains every event; otherwise the first event it cannot explain is printed
with the model's state before it and the transitions the model had enabled.

Exit status: 0 accepted, 1 rejected, 2 usage error (no file, an unreadable file, a line that is
not an event), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from meerkat_model.cli.usage import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, OneLineParser, UsageError, usage_error

PROG = "meerkat-conformance check-trace"


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG,
        description="Replay recorded lifecycle events (JSON Lines event logs) through the reference model: "
        "accept the trace, or name the first event the model cannot explain.",
        epilog="exit status: 0 the model explains every event; 1 an event it cannot explain (printed with the "
        "model's state and its enabled transitions); 2 usage error or a malformed log; 130 interrupted",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="FILE", type=Path, help="event log files or directories of them")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON on stdout")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from meerkat_conformance.trace.check import check_trace
    from meerkat_conformance.trace.reader import TraceFormatError
    from meerkat_conformance.trace.report import verdict_json, verdict_text

    try:
        for path in args.paths:
            if not path.exists():
                raise UsageError(f"no such file or directory: {path}")
        verdict = check_trace(list(args.paths))
    except (UsageError, TraceFormatError, OSError, UnicodeDecodeError) as exc:
        return usage_error(PROG, UsageError(str(exc)) if not isinstance(exc, UsageError) else exc)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps(verdict_json(verdict), indent=2, sort_keys=True, default=str))
    else:
        print(verdict_text(verdict))
    return EXIT_OK if verdict.ok else EXIT_FAILED
