"""The built-in check that every fired transition matches its declarations.

For a step that fired transition ``T`` from a state with statuses ``before`` to one with
statuses ``after`` (:meth:`Machine.statuses`):

* a single entity that ``T`` declares must start in the sources of one of ``T``'s declarations
  for it and end in that declaration's target (unchanged when the target is ``None``);
* a per-id instance the action acts on (:meth:`Machine.subjects`) likewise, even when its
  status does not change;
* any other instance whose status changes must match one of ``T``'s declarations for its
  entity, or a side effect (:meth:`Machine.side_effects`) named ``T`` or ``"*"``; a declared
  move may be followed by a side effect (an operation ended, then evicted by retention);
* an entity not observable on either side (``None``) is not checked.

The outcome depends only on the two status vectors, the transition and the subjects, so each
combination is checked once and remembered (:class:`DeclarationCheck` keeps the cache).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from meerkat_model.machine import Machine, Statuses, TransitionDecl

NAME = "transitions_match_declarations"
DESCRIPTION = "every fired transition moves each entity from one of its declared sources to its declared target"

_Rule = tuple[frozenset[str], str | None]


def _rules(decls: Sequence[TransitionDecl]) -> dict[tuple[str, str], list[_Rule]]:
    table: dict[tuple[str, str], list[_Rule]] = {}
    for d in decls:
        table.setdefault((d.name, d.entity), []).append((frozenset(d.sources), d.target))
    return table


def _matches(rules: list[_Rule], before: str, after: str, then: list[_Rule] | None = None) -> bool:
    """Some rule moves ``before`` to ``after``, or (with ``then``) to a status one of the rules
    ``then`` moves on to ``after`` (a declared move followed by a side effect)."""
    for sources, target in rules:
        if before not in sources:
            continue
        reached = before if target is None else target
        if reached == after or (then and reached != before and _matches(then, reached, after)):
            return True
    return False


def _describe(rules: list[_Rule] | None) -> str:
    if not rules:
        return "none"
    return "; ".join(f"from {', '.join(sorted(s))} to {t or 'unchanged'}" for s, t in rules)


class DeclarationCheck:
    """Checks steps of one machine against its declarations (see the module doc)."""

    def __init__(self, machine: Machine[Any, Any]) -> None:
        self.machine = machine
        self.declared = _rules(machine.transitions())
        self.side = _rules(machine.side_effects())
        self.active = bool(self.declared)
        self._signatures: dict[Statuses, int] = {}
        self._by_sig: list[Statuses] = []
        self.ok: dict[str, set[int]] = {}
        """Per transition, the combinations found right: ``before << 42 | after << 21 | subjects``."""
        self.passed: dict[tuple[int, int, str, int], Any] = {}
        """``(before, after, transition, id(action)) -> action`` for steps found right (the action
        kept alive, so the id stays its own): the search's one-lookup fast path."""
        self.subject_ids: dict[int, tuple[Any, int]] = {}
        """``id(action) -> (action, subjects id)`` (the action kept alive, so the id stays its own)."""
        self._subject_ids: dict[tuple[tuple[str, int], ...], int] = {}
        self._by_subject_id: list[tuple[tuple[str, int], ...]] = []

    def signature(self, state: Any) -> int:
        """A small int standing for the statuses of ``state`` (interned)."""
        statuses = self.machine.statuses(state)
        sig = self._signatures.get(statuses)
        if sig is None:
            sig = self._signatures[statuses] = len(self._signatures)
            self._by_sig.append(statuses)
        return sig

    def subjects(self, action: Any) -> int:
        """A small int standing for the subjects of ``action`` (the cache keeps ``action``
        alive, so its id stays its own)."""
        cached = self.subject_ids.get(id(action))
        if cached is not None and cached[0] is action:
            return cached[1]
        subjects = tuple(self.machine.subjects(action))
        sid = self._subject_ids.get(subjects)
        if sid is None:
            sid = self._subject_ids[subjects] = len(self._by_subject_id)
            self._by_subject_id.append(subjects)
        self.subject_ids[id(action)] = (action, sid)
        return sid

    def check(self, before: int, action: Any, transition: str, after: int) -> str | None:
        """``None`` when the step matches the declarations, else what it did wrong. A combination
        found right is remembered as one int per transition (signatures and subjects interned),
        and the step itself in ``passed``."""
        sid = self.subjects(action)
        key = (before << 42) | (after << 21) | sid
        ok = self.ok.get(transition)
        if ok is not None and key in ok:
            self.passed[before, after, transition, id(action)] = action
            return None
        problem = self._problem(self._by_sig[before], self._by_subject_id[sid], transition, self._by_sig[after])
        if problem is None:
            self.ok.setdefault(transition, set()).add(key)
            self.passed[before, after, transition, id(action)] = action
            return None
        return f"{self.machine.action_label(action)} fired {transition}: {problem}"

    def _problem(
        self, before: Statuses, subjects: tuple[tuple[str, int], ...], transition: str, after: Statuses
    ) -> str | None:
        post = dict(after)
        for entity, was in before:
            now = post.get(entity)
            declared = self.declared.get((transition, entity))
            side = (self.side.get((transition, entity)) or []) + (self.side.get(("*", entity)) or [])
            if isinstance(was, tuple):
                if not isinstance(now, tuple):
                    continue
                for i, (b, a) in enumerate(zip(was, now, strict=False)):
                    if b is None or a is None:
                        continue
                    subject = (entity, i) in subjects
                    if not subject and a == b:
                        continue
                    if declared and _matches(declared, b, a, side):
                        continue
                    if not subject and _matches(side, b, a):
                        continue
                    return f"{entity}[{i}] {b} -> {a}; declared for {entity}: {_describe(declared)}"
            elif was is not None and isinstance(now, str):
                if declared is None:
                    if was == now or _matches(side, was, now):
                        continue
                elif _matches(declared, was, now):
                    continue
                return f"{entity} {was} -> {now}; declared for {entity}: {_describe(declared)}"
        return None
