"""Run a lockstep state machine under a profile and collect its tally.

``run_lockstep`` runs the Hypothesis search (shrinking any disagreement to a minimal trace,
which is re-raised as the ``Disagreement`` of the shrunk run) and returns the accumulated
:class:`~meerkat_conformance.lockstep.tally.MachineTally`.
"""

from __future__ import annotations

from typing import Any

from hypothesis.stateful import run_state_machine_as_test

from meerkat_conformance.cli.progress import ProgressLine
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
) -> MachineTally:
    """Run ``machine_class`` under ``profile`` (optionally overriding examples / steps;
    by default the profile's examples times the class's ``EXAMPLES_FACTOR``), counting into
    ``tally``. Raises ``Disagreement`` (minimal trace) on a difference."""
    if examples is None:
        examples = profile.examples * machine_class.EXAMPLES_FACTOR
    attrs: dict[str, Any] = {"TALLY": tally, "PROGRESS": progress}
    run_class = type(f"{machine_class.__name__}Run", (machine_class,), attrs)
    run_state_machine_as_test(run_class, settings=profile.settings(examples=examples, steps=steps))
    if progress is not None:
        progress.tick(tally, force=True)
    return tally
