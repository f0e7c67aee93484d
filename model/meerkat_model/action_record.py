"""Action records: the typed values a machine's ``actions`` yields and its ``step`` takes.

Each machine declares its actions as ``NamedTuple`` classes, one per call, in its own
``actions`` module (``meerkat_model.ops.actions``, ``meerkat_model.session.actions``), and
decorates each with :func:`action_record`. A record is immutable, hashable and picklable (the
parallel search sends actions between processes), and ``step`` dispatches on its class with
``match``.

Why the decorator: a ``NamedTuple`` compares and hashes as the bare tuple of its fields, so
``PeerReady(0) == RequestRetire(0)`` and ``Crash() == Register() == ()`` would hold. The
decorator makes equality and the hash include the record's class, so two different calls with
the same arguments are two different actions (in sets, dict keys and comparisons), and a record
never equals a plain tuple. It also registers the record's *call name* (``"peer_ready"``), the
name the model's labels and the conformance harness use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

R = TypeVar("R", bound=type[tuple[Any, ...]])

_NAMES: dict[type, str] = {}


def _eq(self: tuple[Any, ...], other: object) -> bool:
    return type(self) is type(other) and tuple.__eq__(self, other)


def _ne(self: tuple[Any, ...], other: object) -> bool:
    return not (type(self) is type(other) and tuple.__eq__(self, other))


def _hash(self: tuple[Any, ...]) -> int:
    return hash((type(self), *self))


def action_record(name: str) -> Callable[[R], R]:
    """Class decorator for a ``NamedTuple`` action: equality and hashing by class and fields,
    and ``name`` registered as its call name (see :func:`action_name`)."""

    def decorate(cls: R) -> R:
        if not (isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")):
            raise TypeError(f"an action record must be a NamedTuple class, not {cls!r}")
        if cls in _NAMES:
            raise TypeError(f"{cls.__qualname__} is already an action record")
        cls.__eq__ = _eq  # type: ignore[method-assign]
        cls.__ne__ = _ne  # type: ignore[assignment,method-assign]
        cls.__hash__ = _hash  # type: ignore[method-assign]
        _NAMES[cls] = name
        return cls

    return decorate


def action_name(action: object) -> str:
    """The call name of an action record (``"complete_operation"`` for ``CompleteOperation``);
    ``ValueError`` for anything that is not an action record."""
    try:
        return _NAMES[type(action)]
    except KeyError:
        raise ValueError(f"not an action record: {action!r}") from None


def record_name(cls: type) -> str:
    """The call name registered for the action record class ``cls`` (``KeyError`` if none)."""
    return _NAMES[cls]
