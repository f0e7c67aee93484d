"""Named search profiles of the Hypothesis lockstep machines.

``fast`` runs in the default test suite (derandomized, bounded time) and is what users run
before a release (about a minute, replaying the model's ``small`` graph); ``deep`` raises both
the number of examples and the steps per example and replays the ``ci`` graph.
``max_examples`` / ``steps`` may be overridden per run, and a run may be seeded (reproducible)
or keep its examples in a Hypothesis example database.

Hypothesis is imported only when settings are built, so the command line can describe the
profiles (``--help``) without the ``conformance`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hypothesis import settings


@dataclass(frozen=True, slots=True)
class Profile:
    """``examples``: Hypothesis ``max_examples``; ``steps``: ``stateful_step_count``;
    ``derandomize``: a fixed search (reproducible run time); ``replay_profile``: the model
    profile whose reachable graph the exhaustive replay walks; ``duration``: how long the
    ``meerkat-conformance`` command runs with this profile (every machine and the replay of the
    ``ci`` graph, measured on a 2-core machine)."""

    name: str
    examples: int
    steps: int
    derandomize: bool
    replay_profile: str
    duration: str = ""
    shrink_seconds: float = 30.0
    """How long shrinking a failing example may take before the smallest found so far is
    reported (see :func:`~meerkat_conformance.lockstep.runner.bounded_shrinking`)."""

    def settings(
        self,
        *,
        examples: int | None = None,
        steps: int | None = None,
        seeded: bool = False,
        database: Path | None = None,
    ) -> settings:
        """Hypothesis settings for this profile, with optional overrides. A ``seeded`` run or
        one with an example ``database`` (a directory) is never derandomized (Hypothesis keeps
        no database for derandomized runs, and a seed replaces the fixed search)."""
        from hypothesis import HealthCheck, Phase, settings
        from hypothesis.database import DirectoryBasedExampleDatabase

        return settings(
            # No "explain" phase: it replays the failing example under a line tracer, which
            # costs more than the shrinking and adds nothing the side-by-side trace lacks.
            phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
            max_examples=examples if examples is not None else self.examples,
            stateful_step_count=steps if steps is not None else self.steps,
            derandomize=self.derandomize and not seeded and database is None,
            deadline=None,
            database=None if database is None else DirectoryBasedExampleDatabase(str(database)),
            print_blob=False,
            report_multiple_bugs=False,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
        )


PROFILES: dict[str, Profile] = {
    "fast": Profile("fast", examples=40, steps=25, derandomize=True, replay_profile="small", duration="about a minute"),
    "deep": Profile(
        "deep",
        examples=1000,
        steps=60,
        derandomize=False,
        replay_profile="ci",
        duration="about 17 minutes",
        shrink_seconds=120.0,
    ),
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; ``KeyError`` names the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown conformance profile {name!r}; known: {', '.join(PROFILES)}") from None
