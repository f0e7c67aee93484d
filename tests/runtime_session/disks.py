"""One storage location (a SQLite file or an in-memory storage) that tests open, fault and
reopen: every handle is a ``FaultInjectingStore`` over a fresh store on the same storage."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.retention_policy import RetentionPolicy
from meerkat_runtime.store.faults import FaultInjectingStore
from meerkat_runtime.store.memory import InMemoryRuntimeStore, MemoryStorage
from meerkat_runtime.store.records import InputRow
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.vocab.errors import WriteOutcomeUnknown
from meerkat_runtime.vocab.ids import canonical_runtime_id

from tests.runtime_session.helpers import persistent


@dataclass
class Disk:
    """``kind`` is ``"memory"`` or ``"sqlite"``."""

    kind: str
    path: Path
    storage: MemoryStorage = field(default_factory=MemoryStorage)
    handles: list[Any] = field(default_factory=list)

    def open(self) -> FaultInjectingStore:
        inner: Any
        if self.kind == "memory":
            inner = InMemoryRuntimeStore(self.storage)
        else:
            inner = SqliteRuntimeStore(self.path, synchronous="NORMAL")
        self.handles.append(inner)
        return FaultInjectingStore(inner)

    def machine(
        self, store: Any = None, *, reattach: bool = True, retention: RetentionPolicy | None = None
    ) -> tuple[MeerkatMachine, FaultInjectingStore]:
        """A machine (same worker as every other machine of the test) on a new handle."""
        handle = store if store is not None else self.open()
        machine, _ = persistent(handle, offload_store_calls=False, reattach=reattach, retention=retention)
        return machine, handle

    def rows(self, session_id: str = "s") -> list[InputRow]:
        store = self.open()
        rows: list[InputRow] = store.load_input_states(canonical_runtime_id(session_id))
        return rows

    def close(self) -> None:
        for handle in self.handles:
            handle.close()


class NotWrittenButUnknown:
    """A store whose next write of ``method`` raises ``WriteOutcomeUnknown`` without writing
    (the ambiguous failure whose write did not land); every other call goes to ``inner``."""

    def __init__(self, inner: Any, method: str) -> None:
        self.inner = inner
        self.method = method
        self.armed = True

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name != self.method:
            return attr

        def call(runtime_id: str, *args: Any, **kwargs: Any) -> Any:
            if self.armed:
                self.armed = False
                raise WriteOutcomeUnknown(runtime_id, f"{name}: the commit's acknowledgement was lost")
            return attr(runtime_id, *args, **kwargs)

        return call
