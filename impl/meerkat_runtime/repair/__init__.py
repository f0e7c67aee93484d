"""Finding and setting aside stored rows that keep a session from recovering.

* ``diagnosis`` — :func:`diagnose_session`: every input row of a session that recovery would
  refuse (failing its checksum, not decoding, contradicting the others), named by id with its
  stored bytes, plus any disagreement with the high-water mark; reads only, never registers
  the session.
* ``quarantine`` — :func:`quarantine_input`: move one input row into the store's quarantine
  (``RuntimeStore.quarantine_row``), under the session's lease when it has one, so the session
  registers and recovers every other input.
* ``ops_salvage`` — :func:`salvage_ops` / :func:`write_salvaged_ops`: an ops state recovery
  refuses (journal records that do not follow from the snapshot, e.g. of two unleased writers)
  cut back to the snapshot and the records that follow, naming the operations given up.

The ``meerkat-runtime`` command (:mod:`meerkat_runtime.cli`) is built on these.
"""
