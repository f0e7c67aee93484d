"""Which statuses of the runtime each status of a model lifecycle stands for.

A model keeps only the statuses its steps can tell apart: where the runtime passes through
several statuses inside what the model treats as one step, the model has one status for all of
them. This module declares the correspondence per (machine, entity); the lifecycle diagrams show
it in each status box and in a table, and a test checks it against both sides (every status the
model declares, every value of the runtime's enum, each exactly once), so it cannot drift.

Runtime statuses are written as the runtime enum's values (``applied_pending_consumption``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StatusCorrespondence:
    """One model status and the runtime statuses it stands for (none: the runtime has no record
    or no object in that status), with why they are one status in the model."""

    model: str
    runtime: tuple[str, ...]
    why: str = ""

    @property
    def is_plain(self) -> bool:
        """True when the model status is exactly one runtime status of the same name."""
        return len(self.runtime) == 1 and self.runtime[0] == self.model.lower()


@dataclass(frozen=True, slots=True)
class EntityCorrespondence:
    """The correspondence of one entity. ``runtime_enum`` names the runtime enum (module and
    class) holding its statuses; ``not_modelled`` lists runtime statuses no model status stands
    for, each with the reason."""

    runtime_enum: str
    statuses: tuple[StatusCorrespondence, ...]
    not_modelled: tuple[tuple[str, str], ...] = ()

    def of(self, model_status: str) -> StatusCorrespondence | None:
        return next((s for s in self.statuses if s.model == model_status), None)

    @property
    def runtime_statuses(self) -> tuple[str, ...]:
        """Every runtime status this declaration names (mapped or not modelled)."""
        return tuple(r for s in self.statuses for r in s.runtime) + tuple(r for r, _ in self.not_modelled)


def _same(*names: str) -> tuple[StatusCorrespondence, ...]:
    return tuple(StatusCorrespondence(name, (name.lower(),)) for name in names)


RUNTIME_STATUSES: dict[tuple[str, str], EntityCorrespondence] = {
    ("ops", "operation"): EntityCorrespondence(
        "meerkat_runtime.vocab.operation.OperationStatus",
        _same(
            "Absent",
            "Provisioning",
            "Running",
            "Retiring",
            "Completed",
            "Failed",
            "Aborted",
            "Cancelled",
            "Retired",
            "Terminated",
        ),
    ),
    ("session", "input"): EntityCorrespondence(
        "meerkat_runtime.vocab.inputs.InputLifecycleState",
        (
            StatusCorrespondence(
                "Absent", (), "no input record: not submitted yet, or answered Rejected / Deduplicated (nothing stored)"
            ),
            StatusCorrespondence(
                "Queued",
                ("accepted", "queued"),
                "accept stores the input and queues it in one durable step (Accepted is only the first entry of "
                "its history); a stored Accepted row is queued at recovery",
            ),
            StatusCorrespondence(
                "Staged",
                ("staged", "applied", "applied_pending_consumption"),
                "part of the run in flight: the model's run outcome moves the input from Staged to its end status "
                "in one step (the boundary commit), through Applied and AppliedPendingConsumption in the runtime",
            ),
            *_same("Consumed", "Superseded", "Coalesced", "Abandoned"),
        ),
    ),
    ("session", "runtime"): EntityCorrespondence(
        "meerkat_runtime.vocab.runtime.RuntimeState",
        _same("Idle", "Attached", "Running", "Retired", "Stopped", "Destroyed"),
        not_modelled=(
            (
                "initializing",
                "named by the runtime's vocabulary but never entered: registration recovers straight into the "
                "stored phase (Idle when nothing is stored), in the runtime as in the model",
            ),
        ),
    ),
    ("session", "registration"): EntityCorrespondence(
        "meerkat_runtime.vocab.runtime.RegistrationPhase",
        (
            StatusCorrespondence(
                "Unregistered", (), "no session in memory (never registered, unregistered or crashed)"
            ),
            *_same("Queuing", "Attaching", "Active"),
        ),
    ),
}


def correspondence(machine: str, entity: str) -> EntityCorrespondence | None:
    """The declared correspondence of ``entity`` of catalog machine ``machine`` (``None``: the
    runtime has no status enum for it, e.g. the ops registry's wait barrier)."""
    return RUNTIME_STATUSES.get((machine, entity))
