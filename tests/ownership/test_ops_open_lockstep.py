"""``open_durable_ops`` registries against the ownership model's registry steps (``ownership_ops``).

Each worker's registry is an ``open_durable_ops`` handle (no ``MeerkatMachine``) of one SQLite
file; the model's actions map to it as ``ClaimRegister(w)`` → ``open_durable_ops`` (owner id
``w<w>``), ``Expire()`` → the store's clock past the lease, ``Renew(w)`` → ``lease.renew()``,
``Release(w)`` → ``close()``, ``RegisterOp`` / ``FinishOp`` → the registry calls. After every step
the operation the store holds (outcome and completion sequence number) must be the model's, and
the runtime must refuse exactly where the model does (``lease_held``, ``ownership_lost``).

A leased open is a fenced worker (``fencing=1``). An unleased one (``ownership=None``: before
leases existed, every open) is an unfenced writer: the model with ``fencing=0``, whose shortest
trace reusing a completion number the runtime then follows step by step, losing a completion
it acknowledged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from meerkat_model.catalog import PROFILES
from meerkat_model.machine import Bounds, Rejected, Stepped
from meerkat_model.ownership import op_slots
from meerkat_model.ownership.actions import ClaimRegister, Expire, FinishOp, RegisterOp, Release, Renew
from meerkat_model.ownership.machine import OwnershipMachine
from meerkat_model.ownership.state import OwnershipState
from meerkat_runtime.ops.recovery import DurableOps, load_persisted_ops, open_durable_ops
from meerkat_runtime.session.ownership import OwnershipConfig
from meerkat_runtime.store.clock import ManualClock
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import MeerkatError
from meerkat_runtime.vocab.ids import OperationId, canonical_runtime_id
from meerkat_runtime.vocab.operation import Completed, Failed, OperationKind, OperationResult, OperationSpec

SESSION = "s"
RT = canonical_runtime_id(SESSION)
LEASE_S = 10.0
OP = OperationId("op0")
DONE, FAIL = op_slots.COMPLETED, op_slots.FAILED

STALE_WRITE = (
    ClaimRegister(0),
    RegisterOp(0, 0),
    Expire(),
    ClaimRegister(1),
    RegisterOp(1, 0),
    FinishOp(1, 0, DONE),
    FinishOp(0, 0, DONE),
)
"""The model's shortest trace reusing a completion number with fencing off
(docs/model-ownership.md, "Fencing switched off")."""


def model(fencing: int) -> OwnershipMachine:
    return OwnershipMachine(Bounds({**PROFILES["ci"]["ownership_ops"].values, "ops": 1, "fencing": fencing}))


class OpenedWorkers:
    """Two workers whose registries are ``open_durable_ops`` handles of one SQLite file."""

    def __init__(self, path: Path, *, leased: bool) -> None:
        self.clock = ManualClock()
        self.store = SqliteRuntimeStore(str(path), clock=self.clock)
        self.leased = leased
        self.handles: dict[int, DurableOps] = {}

    def step(self, action: Any) -> str | None:
        """Apply ``action``; the error kind it raised, or ``None``."""
        try:
            self._apply(action)
        except MeerkatError as exc:
            return exc.kind
        return None

    def _apply(self, action: Any) -> None:
        if isinstance(action, ClaimRegister):
            config = OwnershipConfig(owner_id=f"w{action.w}", lease_s=LEASE_S, renew_every_s=None, clock=self.clock)
            ownership = config if self.leased else None
            self.handles[action.w] = open_durable_ops(self.store, RT, session_id=SESSION, ownership=ownership)
        elif isinstance(action, Expire):
            self.clock.advance(LEASE_S + 1)
        elif isinstance(action, Renew):
            lease = self.handles[action.w].lease
            assert lease is not None
            lease.renew()
            lease.check()
        elif isinstance(action, Release):
            self.handles.pop(action.w).close()
        elif isinstance(action, RegisterOp):
            registry = self.handles[action.w].registry
            registry.register_operation(OperationSpec(OP, OperationKind.BACKGROUND_TOOL_OP, SESSION, "op"))
            registry.provisioning_succeeded(OP)
        else:
            assert isinstance(action, FinishOp)
            registry = self.handles[action.w].registry
            if action.outcome == DONE:
                registry.complete_operation(OP, OperationResult(OP, f"by-w{action.w}"))
            else:
                registry.fail_operation(OP, f"by-w{action.w}")

    def stored_slot(self) -> int:
        """The model's store slot of ``op0`` as the store holds it."""
        persisted = load_persisted_ops(self.store, RT)
        ops = [] if persisted is None else [op for op in persisted.operations if op.spec.id == OP]
        if not ops:
            return op_slots.ABSENT
        (op,) = ops
        outcome = DONE if isinstance(op.terminal_outcome, Completed) else FAIL
        assert isinstance(op.terminal_outcome, Completed | Failed) and op.completion_seq is not None
        return op_slots.terminal(outcome, op.completion_seq)

    def stored_author(self) -> str:
        persisted = load_persisted_ops(self.store, RT)
        assert persisted is not None
        (op,) = persisted.operations
        assert isinstance(op.terminal_outcome, Completed)
        return op.terminal_outcome.result.content


def lockstep(machine: OwnershipMachine, runtime: OpenedWorkers, actions: tuple[Any, ...]) -> list[str]:
    """Drive both; after every step compare refusals and the stored operation. Returns the
    model's rule names."""
    state: OwnershipState = machine.initial_state()
    rules = []
    for n, action in enumerate(actions, 1):
        result = machine.step(state, action)
        got = runtime.step(action)
        if isinstance(result, Rejected):
            assert got == result.kind, (n, action, result, got)
            rules.append(f"rejected:{result.kind}")
            continue
        assert isinstance(result, Stepped)
        errors = [out[1] for out in result.outputs if out[0] == "error"]
        assert got == (errors[0] if errors else None), (n, action, result.transition, result.outputs, got)
        state = result.state
        rules.append(result.transition)
        assert runtime.stored_slot() == state.ops[0], (n, action, op_slots.spell(state.ops[0]))
    return rules


def test_a_second_open_is_refused_while_the_lease_is_live(tmp_path: Path) -> None:
    rules = lockstep(
        model(1),
        OpenedWorkers(tmp_path / "ops.sqlite", leased=True),
        (ClaimRegister(0), RegisterOp(0, 0), ClaimRegister(1), FinishOp(0, 0, DONE), Renew(0), Release(0)),
    )
    assert rules[2] == "rejected:lease_held"
    assert rules[-1] == "release"


def test_a_stale_leased_open_is_refused_as_the_fenced_model_refuses_it(tmp_path: Path) -> None:
    runtime = OpenedWorkers(tmp_path / "ops.sqlite", leased=True)
    rules = lockstep(model(1), runtime, STALE_WRITE)
    assert rules[3] == "takeover" and rules[-1] == "write_refused"
    assert runtime.stored_author() == "by-w1", "the acknowledged completion stays"


def test_an_unleased_open_is_the_unfenced_model_and_loses_an_acknowledged_completion(tmp_path: Path) -> None:
    runtime = OpenedWorkers(tmp_path / "ops.sqlite", leased=False)
    unfenced = model(0)
    rules = lockstep(unfenced, runtime, STALE_WRITE)
    assert rules[-1] != "write_refused"
    final = unfenced.initial_state()
    for action in STALE_WRITE:
        stepped = unfenced.step(final, action)
        assert isinstance(stepped, Stepped)
        final = stepped.state
    broken = {inv.name for inv in unfenced.invariants() if inv.check(final) is not None}
    assert "completion_seqs_never_reused" in broken
    # the runtime: worker 1 was told op0 completed "by-w1"; the store now says "by-w0"
    assert runtime.stored_author() == "by-w0"


@pytest.mark.parametrize("leased", [True, False])
def test_the_mapping_needs_no_lease_for_a_single_writer(tmp_path: Path, leased: bool) -> None:
    lockstep(
        model(1),
        OpenedWorkers(tmp_path / "ops.sqlite", leased=leased),
        (ClaimRegister(0), RegisterOp(0, 0), FinishOp(0, 0, FAIL)),
    )
