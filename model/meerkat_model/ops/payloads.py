"""Payload domains of terminal outcomes.

The model keeps payloads as small indexes into per-kind domains so states stay compact; actions
and observations carry the plain values (``"r1"``, ``None``, ``"shutdown"``). ``payloads`` in
the bounds is the size of each domain.
"""

from __future__ import annotations

from meerkat_model.vocab.statuses import OpStatus

Payload = str | None


def results(n: int) -> tuple[str, ...]:
    """Completion results ``r1 .. rn``."""
    return tuple(f"r{i}" for i in range(1, n + 1))


def errors(n: int) -> tuple[str, ...]:
    """Failure errors ``e1 .. en``."""
    return tuple(f"e{i}" for i in range(1, n + 1))


def reasons(n: int) -> tuple[str | None, ...]:
    """Optional abort/cancel reasons: ``None`` then ``c1 ..``."""
    return (None, *(f"c{i}" for i in range(1, n)))


def terminate_reasons(n: int) -> tuple[str, ...]:
    """Owner-termination reasons: ``shutdown`` then ``t2 ..``."""
    return ("shutdown", *(f"t{i}" for i in range(2, n + 1)))


class PayloadDomains:
    """The payload domain of every terminal outcome kind, for ``n`` values each."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.by_outcome: dict[int, tuple[Payload, ...]] = {
            int(OpStatus.COMPLETED): results(n),
            int(OpStatus.FAILED): errors(n),
            int(OpStatus.ABORTED): reasons(n),
            int(OpStatus.CANCELLED): reasons(n),
            int(OpStatus.RETIRED): (None,),
            int(OpStatus.TERMINATED): terminate_reasons(n),
        }
        self.views: dict[tuple[int, int], tuple[str, Payload]] = {
            (outcome, i): (OpStatus(outcome).name.lower(), value)
            for outcome, domain in self.by_outcome.items()
            for i, value in enumerate(domain)
        }
        self.indexes: dict[tuple[int, Payload], int] = {
            (outcome, value): i for outcome, domain in self.by_outcome.items() for i, value in enumerate(domain)
        }

    def index(self, outcome: int, value: Payload) -> int:
        """Index of ``value`` in the domain of ``outcome``; ``ValueError`` names a foreign value."""
        found = self.indexes.get((outcome, value))
        if found is not None:
            return found
        domain = self.by_outcome[outcome]
        raise ValueError(
            f"payload {value!r} is outside the modelled domain {domain!r} of {OpStatus(outcome).name.lower()}"
        )

    def value(self, outcome: int, index: int) -> Payload:
        return self.by_outcome[outcome][index]


def outcome_view(domains: PayloadDomains, outcome: int, payload: int) -> tuple[str, Payload]:
    """Plain form of a terminal outcome: ``(kind name, payload)``, e.g. ``("completed", "r1")``."""
    return domains.views[(outcome, payload)]
