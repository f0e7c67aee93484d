"""The event catalogue of docs/events.md is generated from the models' transition tables."""

from __future__ import annotations

from meerkat_conformance.event_catalogue import DOC, render
from meerkat_model.ops.transitions import ALL_TRANSITIONS
from meerkat_model.session.transitions import SESSION_TRANSITIONS


def test_the_event_catalogue_has_not_drifted() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert text == render(text), "run: python -m meerkat_conformance.event_catalogue --write"


def test_every_declared_transition_is_in_the_catalogue() -> None:
    text = DOC.read_text(encoding="utf-8")
    for decl in (*SESSION_TRANSITIONS, *ALL_TRANSITIONS):
        if decl.name != "crash":
            assert f"| `{decl.name}` |" in text, decl.name
