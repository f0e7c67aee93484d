"""A wrong argument to a ``MeerkatMachine`` constructor is refused at once with a one-line
``InvalidSetting`` naming what was passed; nothing is built or opened (no file is created)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from meerkat_runtime import InMemoryRuntimeStore, InvalidSetting, MeerkatMachine, RetentionPolicy, RetryPolicy
from meerkat_runtime.session.blobs import BLOB_STORE_METHODS, BlobStore, InMemoryBlobStore, missing_blob_store_methods
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.protocol import STORE_METHODS, missing_store_methods

from tests.runtime_session.helpers import run


class _Forwarding:
    """A wrapper forwarding every store method through ``__getattr__``: a store."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _HalfStore:
    def claim_lease(self) -> None: ...


@pytest.mark.parametrize(
    ("store", "message"),
    [
        (None, "needs a store: a RuntimeStore or the path of an SQLite file, got None"),
        (123, "store must be a RuntimeStore .* got int 123, which lacks persist_input_state"),
        (object(), "got object <object object"),
        (b"x.sqlite", "bytes path b'x.sqlite'"),
        (
            _HalfStore(),
            r"got _HalfStore .*which lacks persist_input_state, load_input_states, load_active_input_states",
        ),
    ],
    ids=["None", "int", "object", "bytes", "half"],
)
def test_persistent_refuses_what_is_neither_a_path_nor_a_store(
    store: Any, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidSetting, match=message) as info:
        MeerkatMachine.persistent(store)
    assert "\n" not in str(info.value) and isinstance(info.value, ValueError)
    assert list(tmp_path.iterdir()) == []  # nothing opened, no file created


@pytest.mark.parametrize("store", [123, "s.sqlite", _HalfStore()], ids=["int", "str", "half"])
def test_the_constructor_refuses_a_non_store(store: Any) -> None:
    with pytest.raises(InvalidSetting, match="store must be a RuntimeStore"):
        MeerkatMachine(store)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ownership": 123}, "ownership must be an OwnershipConfig or None, got int 123"),
        ({"blob_store": 123}, "blob_store must be a BlobStore or None, got int 123, which lacks put_image"),
        ({"offload_store_calls": "x"}, "offload_store_calls must be True or False, got 'x'"),
        ({"close_store": "yes"}, "close_store must be True, False or None, got 'yes'"),
        ({"max_input_bytes": -1}, "max_input_bytes"),
        ({"retry": 3}, "retry must be a RetryPolicy or None, got int 3"),
        ({"retention": 10}, "retention must be a RetentionPolicy or None, got int 10"),
    ],
    ids=["ownership", "blob_store", "offload", "close_store", "max_input_bytes", "retry", "retention"],
)
@pytest.mark.parametrize("as_path", [False, True], ids=["store", "path"])
def test_other_settings_of_the_wrong_kind_are_refused_before_a_file_is_opened(
    settings: dict[str, Any], message: str, as_path: bool, tmp_path: Path
) -> None:
    store: Any = tmp_path / "store.sqlite" if as_path else InMemoryRuntimeStore()
    with pytest.raises(ValueError, match=message):
        MeerkatMachine.persistent(store, **settings)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("settings", [{"retry": 3}, {"retention": 10}], ids=["retry", "retention"])
def test_a_policy_of_the_wrong_kind_is_an_invalid_setting(settings: dict[str, Any]) -> None:
    """``retry`` and ``retention`` that are not policies are refused like every other constructor
    argument of the wrong kind: ``InvalidSetting`` (a ``ValueError``)."""
    for build in (lambda: MeerkatMachine.ephemeral(**settings), lambda: MeerkatMachine(None, **settings)):
        with pytest.raises(InvalidSetting, match="must be a R") as info:
            build()
        assert info.value.kind == "invalid_setting" and isinstance(info.value, ValueError)


def _blob_store_without(name: str) -> object:
    """An object with every ``BlobStore`` method but ``name``."""
    methods = {method: lambda self, *args: None for method in BLOB_STORE_METHODS if method != name}
    return type("_PartBlobStore", (), methods)()


def test_the_blob_store_check_follows_the_blob_store_protocol() -> None:
    """The methods a blob store must have are read from the ``BlobStore`` protocol, so the check
    cannot drift from it: lacking any one of them is refused, naming it."""
    assert BLOB_STORE_METHODS == ("put_image", "get", "exists", "delete")
    assert all(callable(getattr(BlobStore, name)) for name in BLOB_STORE_METHODS)
    assert missing_blob_store_methods(InMemoryBlobStore()) == []
    for name in BLOB_STORE_METHODS:
        with pytest.raises(InvalidSetting, match=f"blob_store must be a BlobStore or None, .*which lacks {name}$"):
            MeerkatMachine(InMemoryRuntimeStore(), _blob_store_without(name))  # type: ignore[arg-type]
    MeerkatMachine(InMemoryRuntimeStore(), _blob_store_without("not a method"))  # type: ignore[arg-type]


def test_a_forwarding_wrapper_and_the_built_in_stores_are_stores() -> None:
    inner = InMemoryRuntimeStore()
    assert missing_store_methods(inner) == [] and missing_store_methods(FaultInjectingStore(inner)) == []
    assert missing_store_methods(_Forwarding(inner)) == []
    assert missing_store_methods(object()) == list(STORE_METHODS)
    assert "claim_lease" in STORE_METHODS and "close" in STORE_METHODS

    async def body() -> None:
        async with MeerkatMachine.persistent(_Forwarding(inner)) as machine:
            await machine.register_session("s")
        assert inner.list_runtimes() == ["rt:session:s"]

    run(body())


def test_max_input_bytes_is_bounded_by_what_a_stored_row_holds(tmp_path: Path) -> None:
    """With a store an input's row is one JSON document of at most 64 MiB: a limit above
    63 MiB could only ever refuse inputs at accept, so it is refused when the machine is built;
    without a store up to 1 GiB stays allowed."""
    with pytest.raises(InvalidSetting, match=r"max_input_bytes 104857600 is more than a stored input's row can hold"):
        MeerkatMachine.persistent(tmp_path / "store.sqlite", max_input_bytes=100 << 20)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InvalidSetting, match="at most 66060288"):
        MeerkatMachine(InMemoryRuntimeStore(), max_input_bytes=(63 << 20) + 1)
    MeerkatMachine(InMemoryRuntimeStore(), max_input_bytes=63 << 20)
    MeerkatMachine.ephemeral(max_input_bytes=1 << 30)


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: RetryPolicy(max_attempts=0), "max_attempts must be an integer >= 1"),
        (lambda: RetryPolicy(backoff_s=-1.0), "backoff_s must be a finite number >= 0"),
        (lambda: RetryPolicy(jitter=2.0), "jitter must be between 0 and 1"),
        (lambda: RetentionPolicy(keep_finished=-1), "retention keep_finished"),
    ],
)
def test_a_policy_with_a_bad_value_is_an_invalid_setting(build: Any, words: str) -> None:
    # a policy is a setting, like the machine's other arguments: the same error class
    with pytest.raises(InvalidSetting, match=words):
        build()
