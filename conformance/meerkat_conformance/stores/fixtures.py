"""Small helpers the store checks share: fresh backends, open handles, sample records."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt, InputRow
from meerkat_runtime.vocab.errors import StoreError

from meerkat_conformance.stores.backend import StoreBackend, StoreFactory
from meerkat_conformance.stores.failure import StoreConformanceFailure

RT = "rt:session:conformance-a"
RT_OTHER = "rt:session:conformance-b"


@contextlib.contextmanager
def fresh(factory: StoreFactory) -> Iterator[StoreBackend]:
    """A new, empty backend, disposed afterwards."""
    backend = factory()
    try:
        yield backend
    finally:
        backend.dispose()


@contextlib.contextmanager
def opened(backend: StoreBackend) -> Iterator[RuntimeStore]:
    """A handle on the backend's storage, closed afterwards."""
    store = backend.open()
    try:
        yield store
    finally:
        store.close()


def receipt(run_id: str, sequence: int, *ids: str, digest: str | None = None, count: int = 0) -> BoundaryReceipt:
    return BoundaryReceipt(run_id, sequence, BoundaryKind.RUN_CHECKPOINT, tuple(ids), digest, count)


def row(input_id: str, payload: bytes | str) -> InputRow:
    return InputRow(input_id, payload.encode() if isinstance(payload, str) else payload)


def as_dict(rows: list[InputRow]) -> dict[str, bytes]:
    return {r.input_id: r.payload for r in rows}


def expect_error(
    step: str, error: type[StoreError], call: Callable[[], object], *, mentions: tuple[str, ...] = ()
) -> StoreError:
    """``call()`` must raise ``error`` (a store error) whose message contains every ``mentions``."""
    try:
        call()
    except error as exc:
        text = str(exc)
        missing = [m for m in mentions if m not in text]
        if missing:
            raise StoreConformanceFailure(step, f"{error.__name__} message {text!r} does not name {missing}") from exc
        return exc
    except Exception as exc:
        raise StoreConformanceFailure(step, f"expected {error.__name__}, got {type(exc).__name__}: {exc}") from exc
    raise StoreConformanceFailure(step, f"expected {error.__name__}, but the call succeeded")
