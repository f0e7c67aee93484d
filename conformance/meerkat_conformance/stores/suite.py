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

``BUILT_IN_FACTORIES`` holds the factories of the in-memory and SQLite stores;
``python -m meerkat_conformance.stores.suite [memory] [sqlite]`` runs the suite on them.
"""

from __future__ import annotations

import sys

from meerkat_conformance.stores.backend import (
    BUILT_IN_FACTORIES,
    CAP_DAMAGE,
    CAP_PROCESSES,
    CAP_WRITE_FAILURE,
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


def main(argv: list[str] | None = None) -> int:
    """Run the suite on the named built-in backends (default: all); exit 1 if any check failed."""
    names = (sys.argv[1:] if argv is None else argv) or list(BUILT_IN_FACTORIES)
    unknown = [n for n in names if n not in BUILT_IN_FACTORIES]
    if unknown:
        print(f"unknown backend(s) {unknown}; choose from {sorted(BUILT_IN_FACTORIES)}", file=sys.stderr)
        return 2
    ok = True
    for name in names:
        report = run_store_conformance(BUILT_IN_FACTORIES[name], name=name)
        print(report.render())
        ok = ok and report.ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
