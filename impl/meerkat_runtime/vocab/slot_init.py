"""A cheaper ``__init__`` for frozen, slotted dataclasses built on every accept.

A frozen dataclass's generated ``__init__`` sets each field through ``object.__setattr__``
(looked up on every call, then the generic attribute machinery finds the slot), about 700
instructions per field more than setting the slot through its descriptor directly. The
accept path builds several such objects per input (history entries, the stored row, the
read-back input and its header), so :func:`slot_init` gives a class an ``__init__`` with the
same signature — parameters in field order, the same defaults and default factories — that
sets each slot through its descriptor. Nothing else changes: the class stays frozen (its
``__setattr__`` still refuses), equality, hashing, ``repr`` and ``dataclasses.replace`` work
as before. Only for classes without ``__post_init__``, init-only or keyword-only fields, or
fields left out of ``__init__`` (refused with ``TypeError``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

C = TypeVar("C", bound=type)

_MISSING: Any = dataclasses.MISSING


class _Factory:
    """The default of a parameter whose field has a default factory (shown as ``<factory>``, as
    the generated ``__init__`` shows it)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def slot_init(cls: C) -> C:
    """Replace the generated ``__init__`` of the frozen, slotted dataclass ``cls`` (see the
    module docstring); returns ``cls``."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: slot_init needs a frozen dataclass with slots")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: slot_init does not run __post_init__")
    names: list[str] = []
    signature: list[str] = []
    namespace: dict[str, Any] = {}
    for index, f in enumerate(dataclasses.fields(cls)):
        if not f.init or f.kw_only:
            raise TypeError(f"{cls.__name__}.{f.name}: slot_init takes only positional init fields")
        setter = f"_set_{index}"
        namespace[setter] = cls.__dict__[f.name].__set__
        names.append(f.name)
        if f.default is not _MISSING:
            namespace[f"_default_{index}"] = f.default
            signature.append(f"{f.name}=_default_{index}")
        elif f.default_factory is not _MISSING:
            namespace[f"_factory_{index}"] = f.default_factory
            namespace["_UNSET"] = _FACTORY
            signature.append(f"{f.name}=_UNSET")
        else:
            signature.append(f.name)
    lines = [f"def __init__(self, {', '.join(signature)}):"]
    for index, f in enumerate(dataclasses.fields(cls)):
        value = f.name
        if f.default_factory is not _MISSING:
            value = f"_factory_{index}() if {f.name} is _UNSET else {f.name}"
        lines.append(f"    _set_{index}(self, {value})")
    exec("\n".join(lines), namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    generated = cls.__dict__["__init__"]
    init.__doc__ = generated.__doc__
    init.__annotations__ = dict(generated.__annotations__)
    setattr(cls, "__init__", init)  # noqa: B010 - a class attribute mypy would refuse to assign
    return cls
