"""Named search profiles of the Hypothesis lockstep machines.

``fast`` runs in the default test suite (derandomized, bounded time); ``deep`` is for the
``meerkat-conformance`` command and raises both the number of examples and the steps per
example. ``max_examples`` / ``steps`` may be overridden per run.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, settings


@dataclass(frozen=True, slots=True)
class Profile:
    """``examples``: Hypothesis ``max_examples``; ``steps``: ``stateful_step_count``;
    ``derandomize``: a fixed search (reproducible run time); ``replay_profile``: the model
    profile whose reachable graph the exhaustive replay walks."""

    name: str
    examples: int
    steps: int
    derandomize: bool
    replay_profile: str

    def settings(self, *, examples: int | None = None, steps: int | None = None) -> settings:
        """Hypothesis settings for this profile, with optional overrides."""
        return settings(
            max_examples=examples if examples is not None else self.examples,
            stateful_step_count=steps if steps is not None else self.steps,
            derandomize=self.derandomize,
            deadline=None,
            database=None,
            print_blob=False,
            report_multiple_bugs=False,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
        )


PROFILES: dict[str, Profile] = {
    "fast": Profile("fast", examples=40, steps=25, derandomize=True, replay_profile="ci"),
    "deep": Profile("deep", examples=1000, steps=60, derandomize=False, replay_profile="ci"),
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; ``KeyError`` names the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown conformance profile {name!r}; known: {', '.join(PROFILES)}") from None
