"""Trace validation: replay a recorded event log through the reference model
(``meerkat-conformance check-trace FILE...``; docs/events.md, "Checking a trace").

:mod:`.reader` reads JSON Lines event logs, :mod:`.order` puts each runtime's events in commit
order (checking sequence numbers), :mod:`.session_replay` and :mod:`.ops_replay` replay them
through the session and operation-registry models, :mod:`.check` ties it together and
:mod:`.report` words the verdict.
"""
