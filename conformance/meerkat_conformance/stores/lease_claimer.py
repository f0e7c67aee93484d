"""Child process of the multi-process lease race: opens a store from a spec and claims leases
on request.

Run as ``python lease_claimer.py '<json spec>'`` with ``opener`` ("module:callable"), ``args``,
``owner`` and ``duration``. It prints ``ready``; then for each runtime id read from stdin it
claims that runtime's lease and prints one JSON line: ``{"won": true, "token": n}`` or
``{"won": false, "holder": owner}`` (``{"error": text}`` for anything else). An empty line or
end of input ends it.
"""

from __future__ import annotations

import json
import sys

from meerkat_runtime.vocab.errors import LeaseHeld

from meerkat_conformance.stores.process_writer import open_from_spec


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    store = open_from_spec(spec["opener"], spec["args"])
    try:
        print("ready", flush=True)
        for line in sys.stdin:
            runtime_id = line.strip()
            if not runtime_id:
                break
            try:
                lease = store.claim_lease(runtime_id, spec["owner"], spec["duration"])
                reply: dict[str, object] = {"won": True, "token": lease.token}
            except LeaseHeld as exc:
                reply = {"won": False, "holder": exc.owner}
            except Exception as exc:
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(reply), flush=True)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
