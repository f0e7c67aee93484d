"""Bounds of the session-runtime model: the data is bounded, never the number of steps.

Every key and its default (``Bounds.values`` overrides them):

=================  =======  ===============================================================
key                default  meaning
=================  =======  ===============================================================
inputs             2        input ids; each is accepted at most once, lowest unused first
steer              1        1: inputs may be accepted into the steer lane as well
idem_keys          1        idempotency keys an input may carry (0: none)
super_keys         1        supersession keys an input may carry (0: none)
coalesce           1        1: a keyed input may coalesce (not only supersede) the older one
ephemeral          1        1: inputs may be ephemeral (dropped at recovery)
invalid            1        1: submit invalid inputs (outcome Rejected, nothing stored)
failures           1        1: executor failures, boundary-commit and terminal-snapshot failures
interrupt          1        1: interrupt the current run
control            1        1: retire, reset, recycle, stop, destroy
unregister         1        1: unregister the session
crash              1        1: crash the process (memory discarded, store kept)
write_failures     1        1: each durable step may also be tried with a failing store write
max_attempts       3        the attempt whose failure abandons an input (the runtime's
                            ``RetryPolicy.max_attempts``), 1..6
fatal_errors       0        1: a run may also fail with an error that is not retryable (it
                            abandons its input at once: attempts set to ``max_attempts``)
direct             1        1: ``accept_input_and_run`` runs a new input at once, without a loop
=================  =======  ===============================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from meerkat_model.machine import Bounds

DEFAULTS: dict[str, int] = {
    "inputs": 2,
    "steer": 1,
    "idem_keys": 1,
    "super_keys": 1,
    "coalesce": 1,
    "ephemeral": 1,
    "invalid": 1,
    "failures": 1,
    "interrupt": 1,
    "control": 1,
    "unregister": 1,
    "crash": 1,
    "write_failures": 1,
    "max_attempts": 3,
    "fatal_errors": 0,
    "direct": 1,
}

_FLAGS = frozenset(DEFAULTS) - {"inputs", "idem_keys", "super_keys", "max_attempts"}


class SessionBoundsError(ValueError):
    """A bounds value the session model cannot use; the message names the key."""


@dataclass(frozen=True, slots=True)
class SessionBounds:
    inputs: int
    steer: bool
    idem_keys: int
    super_keys: int
    coalesce: bool
    ephemeral: bool
    invalid: bool
    failures: bool
    interrupt: bool
    control: bool
    unregister: bool
    crash: bool
    write_failures: bool
    direct: bool
    max_attempts: int = 3
    fatal_errors: bool = False

    @staticmethod
    def from_bounds(bounds: Bounds) -> SessionBounds:
        """Read ``bounds``; unknown keys are ignored (other machines own them), bad values raise."""
        values: dict[str, int] = {}
        for key, default in DEFAULTS.items():
            value = bounds.get(key, default)
            if value < 0:
                raise SessionBoundsError(f"session bound {key!r} must be >= 0, got {value}")
            if key in _FLAGS and value > 1:
                raise SessionBoundsError(f"session bound {key!r} is a 0/1 switch, got {value}")
            values[key] = value
        if not 1 <= values["inputs"] <= 4:
            raise SessionBoundsError(f"session bound 'inputs' must be between 1 and 4, got {values['inputs']}")
        if not 1 <= values["max_attempts"] <= 6:
            raise SessionBoundsError(
                f"session bound 'max_attempts' must be between 1 and 6, got {values['max_attempts']}"
            )
        if values["idem_keys"] > 3 or values["super_keys"] > 3:
            raise SessionBoundsError("session bounds 'idem_keys' and 'super_keys' must be at most 3")
        return SessionBounds(
            inputs=values["inputs"],
            steer=bool(values["steer"]),
            idem_keys=values["idem_keys"],
            super_keys=values["super_keys"],
            coalesce=bool(values["coalesce"]),
            ephemeral=bool(values["ephemeral"]),
            invalid=bool(values["invalid"]),
            failures=bool(values["failures"]),
            interrupt=bool(values["interrupt"]),
            control=bool(values["control"]),
            unregister=bool(values["unregister"]),
            crash=bool(values["crash"]),
            write_failures=bool(values["write_failures"]),
            max_attempts=values["max_attempts"],
            fatal_errors=bool(values["fatal_errors"]),
            direct=bool(values["direct"]),
        )
