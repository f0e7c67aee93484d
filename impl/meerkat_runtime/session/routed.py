"""Routed inputs: a command another component (a mob orchestrator, through its composition
dispatcher) delivers into a registered session with
``MeerkatMachine.apply_routed_meerkat_input(session_id, RoutedInput(...))``.

Contract:

* Only the commands an outside component may give are routed (:data:`ROUTABLE`): ``accept``
  (with its :class:`~meerkat_runtime.session.inputs.Input`), ``retire``, ``reset``,
  ``recycle``, ``stop``, ``destroy``, ``recover`` and ``interrupt``. Each runs exactly as the
  machine's own method does (same gate, same commit seam, same events) and returns what that
  method returns.
* The runtime's internal transitions — the run loop's (``start_run``, ``executor_succeeded``,
  ``executor_failed``, ``boundary_commit_failed``, ...), attachment, registration,
  unregistration, reconciliation, crash — are refused with :class:`RoutedInputRefused` before
  anything is looked up or changed: only the runtime fires them, from what actually happened.
  An unknown name, an ``accept`` without an input or a command carrying one it does not take
  are refused the same way.
* A routed input never registers a session: an unknown session raises ``SessionNotFound``.
* A routed command's dispatch failure always restores: if the composition dispatcher refuses the
  signal of the committed transition, the previous state comes back in memory and on disk and
  ``CompositionDispatchFailed(restored=True)`` is raised, whatever failure policy the machine
  was given (the router delivered the input and must see it either take effect with its signal
  dispatched, or not at all). A run's end (``interrupt``) is kept, as always.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from meerkat_runtime.session.inputs import Input
from meerkat_runtime.session.transitions import SESSION_RULES
from meerkat_runtime.vocab.errors import RuntimeDriverError

ROUTABLE = frozenset({"accept", "retire", "reset", "recycle", "stop", "destroy", "recover", "interrupt"})
"""The commands a routed input may carry."""

INTERNAL = frozenset({binding.rule for binding in SESSION_RULES} | {"reconcile", "crash", "write_fails"}) - ROUTABLE
"""Refused as routed inputs: every other session rule name — the run loop's, attachment,
registration, the variants the runtime chooses (``retire_noop``, ``stop_with_loop``, ...) —,
reconciliation and the model's fault actions: only the runtime fires or chooses them."""


class RoutedInputRefused(RuntimeDriverError):
    """A routed input was refused before anything changed: ``command`` names it, ``reason``
    says why (runtime-internal, unknown, or malformed)."""

    kind: ClassVar[str] = "routed_input_refused"

    def __init__(self, command: str, reason: str) -> None:
        super().__init__(f"routed input {command!r} refused: {reason}")
        self.command = command
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RoutedInput:
    """One command for a session: ``command`` (one of :data:`ROUTABLE`) and, for ``accept``
    only, the ``input``."""

    command: str
    input: Input | None = None

    def check(self) -> None:
        """``RoutedInputRefused`` unless this is a routable, well-formed command."""
        command = self.command
        if not isinstance(command, str):
            raise RoutedInputRefused(repr(command), "the command must be a string")
        if command in INTERNAL:
            raise RoutedInputRefused(command, "a runtime-internal transition; only the runtime fires or chooses it")
        if command not in ROUTABLE:
            raise RoutedInputRefused(command, f"unknown command (routable: {', '.join(sorted(ROUTABLE))})")
        if command == "accept" and not isinstance(self.input, Input):
            raise RoutedInputRefused(command, "an accept must carry the Input to accept")
        if command != "accept" and self.input is not None:
            raise RoutedInputRefused(command, "only an accept carries an input")
