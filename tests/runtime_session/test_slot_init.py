"""``slot_init`` gives a frozen, slotted dataclass an ``__init__`` that behaves as the generated
one: the same signature (defaults, default factories), the same field values, still frozen."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any

import pytest
from meerkat_runtime.session.core.ledger import HistoryEntry
from meerkat_runtime.session.inputs import InputHeader, PromptInput
from meerkat_runtime.session.outcomes import Accepted
from meerkat_runtime.session.persistence import Written
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.vocab.slot_init import slot_init


@dataclass(frozen=True, slots=True)
class _Generated:
    a: int
    b: str = "b"
    c: list[int] = field(default_factory=list)
    d: Any = field(default=None, compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class _Quick:
    a: int
    b: str = "b"
    c: list[int] = field(default_factory=list)
    d: Any = field(default=None, compare=False)


def _values(obj: object) -> tuple[object, ...]:
    return tuple(getattr(obj, f.name) for f in dataclasses.fields(obj))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1,), {}), ((1, "x"), {}), ((1, "x", [2]), {"d": 3}), ((), {"a": 4, "c": [5]}), ((6,), {"b": "y"})],
)
def test_the_quick_init_sets_what_the_generated_one_sets(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    assert _values(_Quick(*args, **kwargs)) == _values(_Generated(*args, **kwargs))


def test_the_quick_init_has_the_generated_signature_and_fresh_defaults() -> None:
    assert str(inspect.signature(_Quick.__init__)) == str(inspect.signature(_Generated.__init__))
    first, second = _Quick(1), _Quick(1)
    assert first.c == [] and first.c is not second.c
    assert first == second and repr(first) == "_Quick(a=1, b='b', c=[], d=None)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.a = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        _Quick()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Quick(1, "b", [], None, "extra")  # type: ignore[call-arg]
    assert dataclasses.replace(first, b="z") == _Quick(1, "z")


@pytest.mark.parametrize("cls", [HistoryEntry, InputRow, Written, Accepted, InputHeader, PromptInput])
def test_the_runtime_classes_keep_their_dataclass_signatures(cls: type) -> None:
    parameters = list(inspect.signature(cls.__dict__["__init__"]).parameters.values())[1:]
    fields = dataclasses.fields(cls)
    assert [p.name for p in parameters] == [f.name for f in fields]
    for parameter, f in zip(parameters, fields, strict=True):
        if f.default is not dataclasses.MISSING:
            assert parameter.default is f.default
        elif f.default_factory is not dataclasses.MISSING:
            assert repr(parameter.default) == "<factory>"
        else:
            assert parameter.default is inspect.Parameter.empty


def test_classes_it_cannot_serve_are_refused() -> None:
    @dataclass(slots=True)
    class NotFrozen:
        a: int

    @dataclass(frozen=True, slots=True)
    class PostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True)
    class KeywordOnly:
        a: int = field(kw_only=True)

    for cls in (NotFrozen, PostInit, KeywordOnly):
        with pytest.raises(TypeError):
            slot_init(cls)
