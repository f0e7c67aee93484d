"""What a store holds, read the way an operator looks at it, without registering anything.

* :func:`session_inputs` / :func:`find_input` (giving :class:`StoredInput` /
  :class:`FoundInput`): every stored input row of a session, decoded (status, attempts, last
  error, result, history), damaged and unreadable rows named rather than raised, and the
  quarantined rows.
* :func:`summarize_sessions` / :func:`summarize_session` (giving :class:`SessionSummary`):
  every runtime a store lists (``RuntimeStore.list_runtimes``) with its lifecycle state, its
  input counts per status, its quarantine and its lease.
* :func:`stored_operations` (giving :class:`StoredOperations`): the operation registry a
  session's store holds (snapshot plus journal), as recovery would read it.

Import them from this package (its ``__all__``); the modules under it (``inputs``,
``sessions``, ``operations``) are internal.

Only the read methods of the ``RuntimeStore`` protocol are called, so this works on any store
and changes nothing; the ``meerkat-runtime`` command (:mod:`meerkat_runtime.cli`) prints it.
"""

from meerkat_runtime.inspection.inputs import FoundInput, StoredInput, find_input, session_inputs
from meerkat_runtime.inspection.operations import StoredOperations, stored_operations
from meerkat_runtime.inspection.sessions import SessionSummary, summarize_session, summarize_sessions

__all__ = [
    "FoundInput",
    "SessionSummary",
    "StoredInput",
    "StoredOperations",
    "find_input",
    "session_inputs",
    "stored_operations",
    "summarize_session",
    "summarize_sessions",
]
