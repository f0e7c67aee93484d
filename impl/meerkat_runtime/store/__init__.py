"""Persistence for the runtime: the ``RuntimeStore`` protocol and its built-in stores.

* ``protocol`` / ``records`` — the contract and the records it carries.
* ``memory`` — ``InMemoryRuntimeStore`` (handles sharing a ``MemoryStorage``).
* ``sqlite`` — ``SqliteRuntimeStore``, the embedded default (``sqlite_schema`` holds its
  versioned schema, ``sqlite_connections`` its connection handling).
* ``faults`` — ``FaultInjectingStore``, a wrapper that fails chosen calls.
* ``integrity`` / ``validation`` / ``tables`` — row checksums, argument checks, row-family names.
"""
