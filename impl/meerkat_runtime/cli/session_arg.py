"""The ``SESSION`` argument: a session id the store must hold."""

from __future__ import annotations

import argparse

from meerkat_runtime.session.machine import stored_session_runtime_id
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.errors import MeerkatError


class UnknownSession(MeerkatError):
    """The store holds nothing for the session (exit status 1)."""


def add_session_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", metavar="SESSION", help="the session id (without the rt:session: prefix)")


def stored_runtime_id(store: RuntimeStore, session_id: str) -> str:
    """The runtime id of ``session_id``; ``ValidationFailed`` for a malformed id (a usage
    error), :class:`UnknownSession` when the store holds nothing for it."""
    runtime_id = stored_session_runtime_id(session_id)
    listed = store.list_runtimes()
    if runtime_id not in listed:
        raise UnknownSession(f"the store holds no session {session_id!r} ({len(listed)} session(s) stored)")
    return runtime_id
