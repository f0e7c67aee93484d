"""A tiny two-job machine and a matching toy runtime, to test the harness itself.

Each of two interchangeable jobs goes idle -> running -> done; ``finish`` on a job that is
not running is refused with ``invalid_transition``; ``reset`` puts every job back to idle.
The toy runtime can carry a planted bug so tests can check the harness notices.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

from meerkat_conformance.lockstep.adapter import StepKind
from meerkat_conformance.lockstep.outcome import Err, Ok, Outcome
from meerkat_model.machine import Bounds, Invariant, Machine, Rejected, Stepped, TransitionDecl

State = tuple[str, ...]
Action = tuple[Any, ...]


class ToyMachine(Machine[State, Action]):
    """Interchangeable jobs (``canonical`` sorts them); no obligations (the default)."""

    name = "toy"

    def __init__(self, bounds: Bounds | None = None) -> None:
        self.jobs = (bounds or Bounds()).get("jobs", 2)

    def initial_state(self) -> State:
        return ("idle",) * self.jobs

    def actions(self, state: State) -> Iterable[Action]:
        for i in range(self.jobs):
            yield ("start", i)
            yield ("finish", i)
        yield ("reset",)

    def step(self, state: State, action: Action) -> Stepped[State] | Rejected:
        if action[0] == "reset":
            if all(s == "idle" for s in state):
                return Rejected("invalid_transition", "nothing to reset")
            return Stepped(self.initial_state(), (), "reset")
        i = action[1]
        want, to = ("idle", "running") if action[0] == "start" else ("running", "done")
        if state[i] != want:
            return Rejected("invalid_transition", f"job {i} is {state[i]}")
        new = list(state)
        new[i] = to
        return Stepped(tuple(new), (i,), action[0])

    def invariants(self) -> Sequence[Invariant[State]]:
        return []

    def canonical(self, state: State) -> State:
        return tuple(sorted(state))

    def transitions(self) -> Sequence[TransitionDecl]:
        return [
            TransitionDecl("start", "job", ("idle",), "running"),
            TransitionDecl("finish", "job", ("running",), "done"),
            TransitionDecl("reset", "job", ("running", "done"), "idle"),
        ]

    def describe(self, state: State) -> Mapping[str, Any]:
        return {f"job{i}": s for i, s in enumerate(state)}

    def action_label(self, action: Action) -> str:
        return action[0] if len(action) == 1 else f"{action[0]}({action[1]})"

    def observe(self, state: State) -> dict[str, str]:
        return {f"job-{i}": s for i, s in enumerate(state)}


class ToyError(Exception):
    kind = "invalid_transition"


class ToyRuntime:
    """The "production" side. ``bug`` plants a defect: ``finish_twice`` lets a done job finish
    again; ``reset_keeps_done`` leaves done jobs done on reset."""

    def __init__(self, jobs: int = 2, bug: str | None = None) -> None:
        self.jobs = {f"job-{i}": "idle" for i in range(jobs)}
        self.bug = bug

    def start(self, job: str) -> str:
        if self.jobs[job] != "idle":
            raise ToyError(job)
        self.jobs[job] = "running"
        return job

    def finish(self, job: str) -> str:
        ok = self.jobs[job] == "running" or (self.bug == "finish_twice" and self.jobs[job] == "done")
        if not ok:
            raise ToyError(job)
        self.jobs[job] = "done"
        return job

    def reset(self) -> None:
        if all(s == "idle" for s in self.jobs.values()):
            raise ToyError("all")
        for job, status in self.jobs.items():
            if not (self.bug == "reset_keeps_done" and status == "done"):
                self.jobs[job] = "idle"


class ToyAdapter:
    def __init__(self, machine: ToyMachine, bug: str | None = None) -> None:
        self.machine = machine
        self.runtime = ToyRuntime(machine.jobs, bug)
        self.closed = False

    def execute(self, action: Hashable) -> Outcome:
        assert isinstance(action, tuple)
        try:
            if action[0] == "reset":
                self.runtime.reset()
                return Ok(None)
            call = self.runtime.start if action[0] == "start" else self.runtime.finish
            return Ok(call(f"job-{action[1]}"))
        except ToyError as exc:
            return Err(exc.kind, str(exc))

    def expected(self, action: Hashable, result: Stepped[Any] | Rejected) -> Outcome:
        if isinstance(result, Rejected):
            return Err(result.kind, result.detail)
        return Ok(f"job-{result.outputs[0]}" if result.outputs else None)

    def observe(self) -> Any:
        return dict(self.runtime.jobs)

    def model_view(self, model_state: Any) -> Any:
        return self.machine.observe(model_state)

    def model_actions(self, action: Hashable, model_state: Any) -> Sequence[Hashable]:
        return (action,)

    def autonomous(self) -> Sequence[Hashable]:
        return ()

    def overdue(self, model_state: Any) -> str | None:
        return None

    def step_kind(self, action: Hashable) -> StepKind:
        return StepKind.CALL

    def fault_variants(self, action: Hashable) -> list[Hashable]:
        return []

    def note(self, action: Hashable) -> str:
        return ""

    def close(self) -> None:
        self.closed = True


def toy_graph(machine: ToyMachine) -> Any:
    """The reachable graph of ``machine`` over canonical states, shaped like the verifier's."""
    import networkx as nx

    graph = nx.DiGraph()
    root = machine.canonical(machine.initial_state())
    graph.add_node(root, depth=0, initial=True)
    frontier = [root]
    while frontier:
        nxt = []
        for state in frontier:
            for action in machine.actions(state):
                result = machine.step(state, action)
                if isinstance(result, Rejected):
                    continue
                target = machine.canonical(result.state)
                if target not in graph:
                    graph.add_node(target, depth=graph.nodes[state]["depth"] + 1, initial=False)
                    nxt.append(target)
                if not graph.has_edge(state, target):
                    graph.add_edge(
                        state,
                        target,
                        action=machine.action_label(action),
                        transition=result.transition,
                        action_obj=action,
                    )
        frontier = nxt
    return graph
