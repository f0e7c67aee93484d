"""Which durable authority a runtime store is, and whether two machines share one.

A store's *authority key* names the durable state it gives access to: a store may say it
itself (``auth_authority_key()`` returning a string: a PostgreSQL store's is the id stored in
its schema, the same for every process and host whatever its connection string); a SQLite
store's is its resolved file path (two handles on one file are one authority); otherwise two
stores share an authority only when they are the same object. Composition surfaces use
:func:`stores_share_authority` (``MeerkatMachine.shares_runtime_persistence_with`` /
``shares_runtime_store_authority``) to refuse a mismatched machine before a visible terminal
event can outrun the store that owns its commit; lifecycle events carry the key (``store``) so
a trace checker never mixes the histories of two stores.
"""

from __future__ import annotations

import os
from pathlib import Path

from meerkat_runtime.store.protocol import RuntimeStore


def store_authority_key(store: RuntimeStore | None) -> str | None:
    """The durable authority key of ``store``; ``None`` when it has none (then only the same
    object is the same authority)."""
    if store is None:
        return None
    inner = getattr(store, "inner", None)
    if inner is not None and inner is not store and isinstance(inner, RuntimeStore):
        return store_authority_key(inner)  # a wrapper (fault injection) is its store's authority
    own = getattr(store, "auth_authority_key", None)
    if callable(own):
        key = own()
        if isinstance(key, str) and key:
            return key
    path = getattr(store, "path", None)
    if isinstance(path, str) and path and path != ":memory:":
        return f"sqlite:{Path(path).resolve()}"
    return None


def store_label(store: RuntimeStore | None, machine: str) -> str:
    """The ``store`` field of events: the authority key, else an id unique to this process and
    object (``memory:<pid>:<id>``), or ``ephemeral:<machine>`` without a store."""
    if store is None:
        return f"ephemeral:{machine}"
    store = innermost_store(store)
    return store_authority_key(store) or f"{type(store).__name__}:{os.getpid()}:{id(store):x}"


def stores_share_authority(a: RuntimeStore | None, b: RuntimeStore | None) -> bool:
    """Whether ``a`` and ``b`` give access to the same durable state (both ``None``: both
    ephemeral, which share nothing durable and so cannot disagree)."""
    if a is None or b is None:
        return a is None and b is None
    key_a, key_b = store_authority_key(a), store_authority_key(b)
    if key_a is not None and key_b is not None:
        return key_a == key_b
    return innermost_store(a) is innermost_store(b)


def innermost_store(store: RuntimeStore) -> RuntimeStore:
    """The store under any wrappers (fault injection): the object that is the authority."""
    inner = getattr(store, "inner", None)
    while isinstance(inner, RuntimeStore) and inner is not store:
        store, inner = inner, getattr(inner, "inner", None)
    return store
