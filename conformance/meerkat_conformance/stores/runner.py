"""The registry of named store checks, the runner and its report."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from meerkat_conformance.stores import (
    checks_atomicity,
    checks_batch_renewal,
    checks_concurrency,
    checks_damage,
    checks_finished,
    checks_handles,
    checks_integrity,
    checks_keys,
    checks_ownership,
    checks_roundtrip,
)
from meerkat_conformance.stores.backend import CAP_DAMAGE, CAP_PROCESSES, CAP_WRITE_FAILURE, StoreFactory
from meerkat_conformance.stores.failure import NotApplicable, StoreConformanceFailure

Status = Literal["passed", "failed", "not_applicable"]


@dataclass(frozen=True, slots=True)
class StoreCheck:
    """A named check. ``requires`` lists backend capabilities it needs."""

    name: str
    run: Callable[[StoreFactory], None]
    requires: frozenset[str] = frozenset()

    @property
    def description(self) -> str:
        return (self.run.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")


def _check(name: str, run: Callable[[StoreFactory], None], *requires: str) -> StoreCheck:
    return StoreCheck(name, run, frozenset(requires))


CHECKS: tuple[StoreCheck, ...] = (
    _check("input_round_trip", checks_roundtrip.check_input_round_trip),
    _check("boundary_round_trip", checks_roundtrip.check_boundary_round_trip),
    _check("lifecycle_round_trip", checks_roundtrip.check_lifecycle_round_trip),
    _check("ops_round_trip", checks_roundtrip.check_ops_round_trip),
    _check("ordering", checks_keys.check_ordering),
    _check("runtime_isolation", checks_keys.check_runtime_isolation),
    _check("runtime_listing", checks_keys.check_runtime_listing),
    _check("duplicate_receipt_rejected", checks_atomicity.check_duplicate_receipt_rejected),
    _check("rejected_commit_changes_nothing", checks_atomicity.check_rejected_commit_changes_nothing),
    _check(
        "failure_mid_commit_changes_nothing",
        checks_atomicity.check_failure_mid_commit_changes_nothing,
        CAP_WRITE_FAILURE,
    ),
    _check("close_and_reopen", checks_handles.check_close_and_reopen),
    _check("two_handles", checks_handles.check_two_handles),
    _check("damaged_rows_fail_closed", checks_integrity.check_damaged_rows_fail_closed, CAP_DAMAGE),
    _check("malformed_arguments_refused", checks_integrity.check_malformed_arguments_refused),
    _check("concurrent_threads", checks_concurrency.check_concurrent_threads),
    _check("concurrent_processes", checks_concurrency.check_concurrent_processes, CAP_PROCESSES),
    _check("lease_claim_and_renew", checks_ownership.check_lease_claim_and_renew),
    _check("lease_expiry_and_release", checks_ownership.check_lease_expiry_and_release),
    _check("lease_token_grows", checks_ownership.check_lease_token_grows),
    _check("lease_batch_renewal", checks_batch_renewal.check_lease_batch_renewal),
    _check("stale_fence_refused", checks_ownership.check_stale_fence_refused),
    _check("unfenced_write_refused", checks_ownership.check_unfenced_write_refused),
    _check("lease_claim_race_threads", checks_ownership.check_lease_claim_race_threads),
    _check("lease_claim_race_processes", checks_ownership.check_lease_claim_race_processes, CAP_PROCESSES),
    _check("high_water_mark", checks_damage.check_high_water_mark),
    _check("high_water_mark_concurrent", checks_damage.check_high_water_mark_concurrent),
    _check("quarantine", checks_damage.check_quarantine),
    _check("finished_inputs_and_compaction", checks_finished.check_finished_inputs_and_compaction),
    _check("compaction_releases_receipts", checks_finished.check_compaction_releases_receipts),
)
"""Every check, in the order the runner runs them. Names are stable."""

CHECKS_BY_NAME: dict[str, StoreCheck] = {c.name: c for c in CHECKS}


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    status: Status
    seconds: float
    step: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StoreConformanceReport:
    """Results of one run. ``ok`` means no check failed (not-applicable checks do not fail)."""

    backend: str
    results: tuple[CheckResult, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(r.status != "failed" for r in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.status == "failed")

    def render(self) -> str:
        """A plain-text table: one line per check, then a summary line."""
        lines = [f"store conformance: {self.backend}"]
        for r in self.results:
            where = f"  [{r.step}] {r.detail}" if r.status != "passed" else ""
            lines.append(f"  {r.status:<14} {r.name:<36} {r.seconds * 1000:8.1f} ms{where}")
        counts = {s: sum(1 for r in self.results if r.status == s) for s in ("passed", "failed", "not_applicable")}
        lines.append(
            f"  {'OK' if self.ok else 'FAILED'}: {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['not_applicable']} not applicable"
        )
        return "\n".join(lines)


def run_check(check: StoreCheck, factory: StoreFactory) -> CheckResult:
    """Run one check; never raises for a store failure (it becomes a ``failed`` result)."""
    start = time.perf_counter()
    try:
        check.run(factory)
    except NotApplicable as exc:
        return CheckResult(check.name, "not_applicable", time.perf_counter() - start, "capability", str(exc))
    except StoreConformanceFailure as exc:
        return CheckResult(check.name, "failed", time.perf_counter() - start, exc.step, exc.detail)
    except Exception as exc:
        detail = f"unexpected {type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        return CheckResult(check.name, "failed", time.perf_counter() - start, "unexpected error", detail)
    return CheckResult(check.name, "passed", time.perf_counter() - start)


def run_store_conformance(
    factory: StoreFactory, *, only: Iterable[str] | None = None, name: str | None = None
) -> StoreConformanceReport:
    """Run every check (or the named ones) against stores made by ``factory``."""
    selected = CHECKS if only is None else tuple(CHECKS_BY_NAME[n] for n in only)
    label = name if name is not None else _backend_name(factory)
    return StoreConformanceReport(label, tuple(run_check(c, factory) for c in selected))


def _backend_name(factory: StoreFactory) -> str:
    backend = factory()
    try:
        return backend.name
    finally:
        backend.dispose()


@dataclass(frozen=True, slots=True)
class StoreCheckCase:
    """One (backend, check) pair, for ``pytest.mark.parametrize(..., ids=lambda c: c.id)``."""

    backend: str
    factory: StoreFactory
    check: StoreCheck

    @property
    def id(self) -> str:
        return f"{self.backend}-{self.check.name}"

    def run(self) -> None:
        """Run the check; raise ``StoreConformanceFailure`` (an ``AssertionError``) on failure."""
        self.check.run(self.factory)


def store_check_cases(factories: Mapping[str, StoreFactory]) -> list[StoreCheckCase]:
    """Every applicable (backend, check) pair: checks needing a capability a backend lacks are
    left out, so a parametrized test never has to skip."""
    cases: list[StoreCheckCase] = []
    for label, factory in factories.items():
        probe = factory()
        try:
            capabilities = probe.capabilities
        finally:
            probe.dispose()
        cases.extend(StoreCheckCase(label, factory, c) for c in CHECKS if c.requires <= capabilities)
    return cases
