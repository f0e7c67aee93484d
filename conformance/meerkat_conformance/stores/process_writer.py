"""Child process of the multi-process check: opens a store from a spec and writes markers.

Run as ``python process_writer.py '<json spec>'`` (with the store's package importable). The spec holds
``opener`` ("module:callable"), ``args``, ``shared`` and ``own`` runtime ids, ``writer`` (a
label) and ``count``. For each i the child appends record ``<writer>-<i>`` and persists row
``<writer>-<i>`` under the shared runtime, and applies receipt ``(<writer>, i)`` under its own.
It prints ``done <count>`` and exits 0, or prints the error and exits 1.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.records import BoundaryKind, BoundaryReceipt, InputRow


def open_from_spec(opener: str, args: list[Any]) -> RuntimeStore:
    """Import ``module:callable`` and call it with ``args``."""
    module_name, _, attr = opener.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    store: RuntimeStore = factory(*args)
    return store


def write_markers(store: RuntimeStore, shared: str, own: str, writer: str, count: int) -> None:
    for i in range(count):
        marker = f"{writer}-{i}"
        store.append_ops_record(shared, marker.encode())
        store.persist_input_state(shared, InputRow(marker, marker.encode()))
        store.atomic_apply(
            own,
            session_snapshot=marker.encode(),
            receipt=BoundaryReceipt(writer, i, BoundaryKind.RUN_CHECKPOINT, (marker,)),
            rows=[InputRow(marker, b"applied")],
        )


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    try:
        store = open_from_spec(spec["opener"], spec["args"])
        try:
            write_markers(store, spec["shared"], spec["own"], spec["writer"], spec["count"])
        finally:
            store.close()
    except Exception as exc:
        print(f"error {type(exc).__name__}: {exc}", flush=True)
        return 1
    print(f"done {spec['count']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
