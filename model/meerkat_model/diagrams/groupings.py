"""How the reachable states of each catalog machine are grouped for the overview picture and
coloured in the state explorer.

A grouping names, from a state's ``describe()`` fields, the group the state belongs to. Machines
without a declared grouping are grouped by their first field named like ``*phase*`` or
``*status*`` (all states in one group when there is none).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from meerkat_model.diagrams.reachable import NO_PHASE, guess_phase_field
from meerkat_model.diagrams.values import format_value


@dataclass(frozen=True, slots=True)
class Grouping:
    """How states are grouped: ``of(description)`` names a state's group; ``meaning`` says what
    the names are (shown under the picture)."""

    meaning: str
    of: Callable[[Mapping[str, Any]], str]


def _ops_group(description: Mapping[str, Any]) -> str:
    active = int(description["active_count"])
    kept = len(description["completed_order"])
    text = f"{active} active / {kept} kept"
    return text + " / waiting" if description["barrier"] else text


def _session_group(description: Mapping[str, Any]) -> str:
    runtime = description["runtime"]
    return "Unregistered" if runtime is None else str(runtime).capitalize()


GROUPINGS: dict[str, Grouping] = {
    "ops": Grouping(
        "operations active (Provisioning, Running, Retiring) / terminal operations kept for collection / "
        "a wait_all barrier waiting",
        _ops_group,
    ),
    "session": Grouping("runtime phase (Unregistered: no session in memory)", _session_group),
}


def grouping_for(key: str, sample: Mapping[str, Any]) -> Grouping:
    """The declared grouping of machine ``key``, else one by the phase field guessed from the
    description ``sample`` (any state's)."""
    if key in GROUPINGS:
        return GROUPINGS[key]
    field = guess_phase_field(sample)
    if field is None:
        return Grouping("(no phase field: one group)", lambda description: NO_PHASE)

    def of(description: Mapping[str, Any]) -> str:
        return format_value(description[field]) if field in description else NO_PHASE

    return Grouping(field, of)
