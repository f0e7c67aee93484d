"""Persistence for the runtime: the ``RuntimeStore`` protocol and its built-in stores.

* ``protocol`` / ``records`` — the contract and the records it carries.
* ``memory`` — ``InMemoryRuntimeStore`` (handles sharing a ``MemoryStorage``).
* ``sqlite`` — ``SqliteRuntimeStore``, the embedded default (``sqlite_schema`` holds its
  versioned schema, ``sqlite_connections`` its connection handling).
* ``faults`` — ``FaultInjectingStore``, a wrapper that fails chosen calls.
* ``integrity`` / ``validation`` / ``tables`` — row checksums, argument checks, row-family names.
* ``high_water`` — the per-runtime high-water mark every write advances and recovery compares.
* ``sqlite_integrity`` / ``sqlite_wal`` / ``sqlite_files`` — the page check and the write-ahead
  log check an SQLite store runs on open, and when it may read the files.
* ``sqlite_marks`` / ``sqlite_paths`` / ``sqlite_readonly`` / ``sqlite_check`` — the mark in
  SQLite, path checks, opening without writing, and the read-only examination of a file.
* ``postgres`` — ``PostgresRuntimeStore`` (the ``postgres`` extra; nothing else imports it):
  ``postgres_schema`` its versioned schema, ``postgres_transactions`` its transactions and
  their failures, ``postgres_marks`` the mark as one statement per write, ``postgres_in_flight``
  the writes whose outcome is unknown and that may still be committing.
"""
