"""Run a lockstep state machine under a profile and collect its tally.

``run_lockstep`` runs the Hypothesis search (shrinking any disagreement to a minimal trace,
which is re-raised as the ``Disagreement`` of the shrunk run) and returns the accumulated
:class:`~meerkat_conformance.lockstep.tally.MachineTally`. A ``seed`` makes the search
reproducible (Hypothesis' ``@seed`` on the machine class); an example ``database`` directory
keeps the failing examples Hypothesis found and replays them first on the next run.
Shrinking is bounded in time (the profile's ``shrink_seconds``): past it the smallest failing
example found so far is the one reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import seed as hypothesis_seed
from hypothesis.internal.conjecture import engine as _engine
from hypothesis.stateful import run_state_machine_as_test

from meerkat_conformance.cli.progress import ProgressLine
from meerkat_conformance.lockstep.disks import DiskKind
from meerkat_conformance.lockstep.profiles import Profile
from meerkat_conformance.lockstep.stateful import LockstepStateMachine
from meerkat_conformance.lockstep.tally import MachineTally


def run_lockstep(
    machine_class: type[LockstepStateMachine],
    profile: Profile,
    tally: MachineTally,
    *,
    examples: int | None = None,
    steps: int | None = None,
    progress: ProgressLine | None = None,
    seed: int | None = None,
    database: Path | None = None,
    disk: DiskKind | None = None,
) -> MachineTally:
    """Run ``machine_class`` under ``profile`` (optionally overriding examples / steps;
    by default the profile's examples times the class's ``EXAMPLES_FACTOR``), counting into
    ``tally``; ``disk`` replaces the class's store under the search. Raises ``Disagreement``
    (minimal trace) on a difference."""
    if examples is None:
        examples = search_examples(machine_class, profile)
    attrs: dict[str, Any] = {"TALLY": tally, "PROGRESS": progress}
    if disk is not None:
        attrs["DISK"] = disk
    run_class = type(f"{machine_class.__name__}Run", (machine_class,), attrs)
    if seed is not None:
        run_class = hypothesis_seed(seed)(run_class)
    chosen = profile.settings(examples=examples, steps=steps, seeded=seed is not None, database=database)
    with bounded_shrinking(profile.shrink_seconds):
        run_state_machine_as_test(run_class, settings=chosen)
    if progress is not None:
        progress.tick(tally, force=True)
    return tally


def search_examples(machine_class: type[LockstepStateMachine], profile: Profile) -> int:
    """The number of examples ``profile`` gives ``machine_class`` (times its ``EXAMPLES_FACTOR``)."""
    return profile.examples * machine_class.EXAMPLES_FACTOR


@contextmanager
def bounded_shrinking(seconds: float) -> Iterator[None]:
    """Within the block, Hypothesis stops shrinking a failure ``seconds`` after it started (and
    reports the smallest example found by then). Hypothesis holds this limit as a module
    constant of its engine (300 s by default), read when shrinking starts; it is restored on exit."""
    before = _engine.MAX_SHRINKING_SECONDS
    _engine.MAX_SHRINKING_SECONDS = seconds  # type: ignore[assignment]
    try:
        yield
    finally:
        _engine.MAX_SHRINKING_SECONDS = before
