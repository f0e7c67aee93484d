"""What a store holds, read the way an operator looks at it, without registering anything.

* ``inputs`` — :func:`session_inputs` / :func:`find_input`: every stored input row of a session,
  decoded (status, attempts, last error, result, history), damaged and unreadable rows named
  rather than raised, and the quarantined rows.
* ``sessions`` — :func:`summarize_sessions`: every runtime a store lists
  (``RuntimeStore.list_runtimes``) with its lifecycle state, its input counts per status, its
  quarantine and its lease.
* ``operations`` — :func:`stored_operations`: the operation registry a session's store holds
  (snapshot plus journal), as recovery would read it.

Only the read methods of the ``RuntimeStore`` protocol are called, so this works on any store
and changes nothing; the ``meerkat-runtime`` command (:mod:`meerkat_runtime.cli`) prints it.
"""
