"""The declared transitions are exact: every step's effect on every entity it moves matches a
declaration of the transition it names, and every declaration is matched by some step."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from meerkat_model.machine import Bounds, Stepped, TransitionDecl
from meerkat_model.session import SessionMachine
from meerkat_model.session.state import SessionState

from .profiles import session_bounds

_CAMEL = {"APPLIED_PENDING_CONSUMPTION": "AppliedPendingConsumption"}


def _name(enum_name: str) -> str:
    return _CAMEL.get(enum_name, enum_name.capitalize())


def statuses(state: SessionState) -> dict[tuple[str, int], str | None]:
    """Status of every entity instance; ``None`` where the instance is not in memory."""
    out: dict[tuple[str, int], str | None] = {}
    m = state.memory
    out[("registration", 0)] = _name(m.registration.name) if m is not None else "Unregistered"
    out[("runtime", 0)] = _name(m.phase.name) if m is not None else None
    for i, attr in enumerate(state.attrs):
        if attr is None:
            out[("input", i)] = "Absent"
        else:
            row = m.rows[i] if m is not None else None
            out[("input", i)] = _name(row.phase.name) if row is not None else None
    return out


def moves(m: SessionMachine, states: list[SessionState]) -> Iterator[tuple[str, str, str | None, str | None]]:
    """(transition, entity, before, after) for every instance every step touches or names."""
    for state in states:
        before = statuses(state)
        for action in m.actions(state):
            result = m.step(state, action)
            if not isinstance(result, Stepped):
                continue
            after = statuses(result.state)
            for (entity, _), old in before.items():
                new = after[(entity, _)]
                yield result.transition, entity, old, new


@pytest.fixture(scope="module")
def ci_moves(ci_exploration: Any) -> list[tuple[str, str, str | None, str | None]]:
    m = SessionMachine(session_bounds("ci"))
    return sorted(set(moves(m, list(ci_exploration.state_list))), key=repr)


def _decls(m: SessionMachine) -> dict[tuple[str, str], list[TransitionDecl]]:
    table: dict[tuple[str, str], list[TransitionDecl]] = {}
    for decl in m.transitions():
        table.setdefault((decl.name, decl.entity), []).append(decl)
    return table


def test_every_move_matches_a_declaration(ci_moves: list[tuple[str, str, Any, Any]]) -> None:
    table = _decls(SessionMachine(Bounds()))
    for name, entity, old, new in ci_moves:
        if old is None or new is None or old == new:
            continue  # not in memory on one side (registration, crash), or not moved
        decls = table.get((name, entity), [])
        assert any(old in d.sources and d.target == new for d in decls), (
            f"{name} moved {entity} {old} -> {new}, declared: {[(d.sources, d.target) for d in decls]}"
        )


def test_every_declaration_is_matched_by_a_step(ci_moves: list[tuple[str, str, Any, Any]]) -> None:
    m = SessionMachine(Bounds())
    for decl in m.transitions():
        if decl.target is None:
            hit = any(n == decl.name and e == decl.entity and o in decl.sources and o == t for n, e, o, t in ci_moves)
        else:
            hit = any(
                n == decl.name and e == decl.entity and o in decl.sources and t == decl.target and o != t
                for n, e, o, t in ci_moves
            ) or (
                decl.target in decl.sources
                and any(n == decl.name and e == decl.entity and o == t == decl.target for n, e, o, t in ci_moves)
            )
        assert hit, f"declaration {decl.name} ({decl.entity}: {decl.sources} -> {decl.target}) never happens"


def test_every_source_of_every_declaration_is_reached(ci_moves: list[tuple[str, str, Any, Any]]) -> None:
    m = SessionMachine(Bounds())
    for decl in m.transitions():
        for source in decl.sources:
            assert any(
                n == decl.name and e == decl.entity and o == source and (decl.target is None or t == decl.target)
                for n, e, o, t in ci_moves
            ), f"{decl.name} ({decl.entity}) never fires from {source}"
