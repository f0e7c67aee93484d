"""Store conformance suite: checks any ``RuntimeStore`` implementation can run against itself.

Give it a *factory*: a zero-argument callable returning a ``StoreBackend`` (one fresh storage
location with ``open()``, ``dispose()`` and optional capability hooks; see
``meerkat_conformance.stores.backend``).

Plain call::

    report = run_store_conformance(my_factory)
    print(report.render()); assert report.ok

With pytest::

    @pytest.mark.parametrize("case", store_check_cases({"mine": my_factory}), ids=lambda c: c.id)
    def test_store_conformance(case: StoreCheckCase) -> None:
        case.run()

``BUILT_IN_FACTORIES`` holds the factories of the in-memory and SQLite stores, and of the
PostgreSQL store when ``MEERKAT_PG_DSN`` names a server;
``python -m meerkat_conformance.stores.suite [memory] [sqlite] [postgres] [--check NAME]`` runs
the suite on them (memory and SQLite need no extra; postgres needs the ``postgres`` extra).
"""

from __future__ import annotations

import argparse
import sys

from meerkat_model.cli.usage import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, OneLineParser, usage_error

from meerkat_conformance.stores.backend import (
    BUILT_IN_FACTORIES,
    CAP_DAMAGE,
    CAP_PROCESSES,
    CAP_WRITE_FAILURE,
    PG_DSN_ENV,
    ROW_KINDS,
    MemoryBackend,
    RowKind,
    RowRef,
    SqliteBackend,
    StoreBackend,
    StoreFactory,
)
from meerkat_conformance.stores.failure import NotApplicable, StoreConformanceFailure
from meerkat_conformance.stores.runner import (
    CHECKS,
    CHECKS_BY_NAME,
    CheckResult,
    StoreCheck,
    StoreCheckCase,
    StoreConformanceReport,
    run_check,
    run_store_conformance,
    store_check_cases,
)

__all__ = [
    "BUILT_IN_FACTORIES",
    "CAP_DAMAGE",
    "CAP_PROCESSES",
    "CAP_WRITE_FAILURE",
    "CHECKS",
    "CHECKS_BY_NAME",
    "PG_DSN_ENV",
    "ROW_KINDS",
    "CheckResult",
    "MemoryBackend",
    "NotApplicable",
    "RowKind",
    "RowRef",
    "SqliteBackend",
    "StoreBackend",
    "StoreCheck",
    "StoreCheckCase",
    "StoreConformanceFailure",
    "StoreConformanceReport",
    "StoreFactory",
    "run_check",
    "run_store_conformance",
    "store_check_cases",
]


PROG = "python -m meerkat_conformance.stores.suite"


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Run the store conformance suite on the built-in stores and print one report per store.",
        epilog="checks: " + ", ".join(CHECKS_BY_NAME) + ". "
        "A third-party store runs the same checks with run_store_conformance(factory). "
        "exit status: 0 every check passed (or is not applicable); 1 a check failed; 2 usage error; "
        "130 interrupted with Ctrl-C (the report of the checks that finished is printed)",
    )
    parser.add_argument(
        "backends",
        nargs="*",
        metavar="BACKEND",
        help=f"built-in store to check: memory, sqlite, postgres (needs {PG_DSN_ENV}) (default: all)",
    )
    parser.add_argument(
        "--check",
        action="append",
        choices=list(CHECKS_BY_NAME),
        metavar="NAME",
        dest="checks",
        help="run only this check (repeatable; default: every check)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the suite on the named built-in backends (default: all); exit 1 if any check failed."""
    parser = _parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if "postgres" in args.backends and "postgres" not in BUILT_IN_FACTORIES:
        return usage_error(PROG, f"the postgres backend needs a server: set {PG_DSN_ENV} to a libpq connection string")
    unknown = [n for n in args.backends if n not in BUILT_IN_FACTORIES]
    if unknown:
        return usage_error(
            PROG, f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BUILT_IN_FACTORIES)}"
        )
    names = list(dict.fromkeys(args.backends)) or list(BUILT_IN_FACTORIES)
    selected = CHECKS if not args.checks else tuple(CHECKS_BY_NAME[n] for n in dict.fromkeys(args.checks))
    ok = True
    for name in names:
        results: list[CheckResult] = []
        try:
            for check in selected:
                results.append(run_check(check, BUILT_IN_FACTORIES[name]))
        except KeyboardInterrupt:
            print(StoreConformanceReport(name, tuple(results)).render())
            print(f"interrupted during {name}: {len(results)} of {len(selected)} checks finished", flush=True)
            print(f"{PROG}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        report = StoreConformanceReport(name, tuple(results))
        print(report.render(), flush=True)
        ok = ok and report.ok
    return EXIT_OK if ok else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
