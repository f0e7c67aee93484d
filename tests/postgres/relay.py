"""TCP relays in front of the PostgreSQL server, for the tests of network failures.

:class:`Relay` accepts connections and copies bytes both ways; :class:`CuttableProxy` can cut
every connection (the client sees it break while the backend lives on), and
:class:`SilencingProxy` can black-hole one backend's answers (both sockets stay open: a network
that stops delivering, a stalled proxy)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

Muted = Callable[[bytes], bool]
"""Told each chunk the server sends on one connection (and ``b""`` at its end): whether to drop it."""


class Relay:
    """Relays each connection to the server through 127.0.0.1; ``dsn`` reaches the server through
    it (``conninfo`` overrides further connection parameters). Subclasses choose, per connection,
    which of the server's bytes reach the client (:meth:`_server_muted`)."""

    def __init__(self, dsn: str, **conninfo: str) -> None:
        params = conninfo_to_dict(dsn)
        host, port = str(params.get("host") or "127.0.0.1"), int(str(params.get("port") or 5432))
        self._upstream: tuple[socket.AddressFamily, Any] = (
            (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}") if host.startswith("/") else (socket.AF_INET, (host, port))
        )
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen()
        self.dsn = make_conninfo(dsn, host="127.0.0.1", port=self._listener.getsockname()[1], **conninfo)
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _server_muted(self) -> Muted | None:
        """For a new connection: which of the server's chunks to drop (``None``: none)."""
        return None

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.socket(self._upstream[0])
            server.connect(self._upstream[1])
            with self._lock:
                self._pairs.append((client, server))
            threading.Thread(target=_copy, args=(client, server, None), daemon=True).start()
            threading.Thread(target=_copy, args=(server, client, self._server_muted()), daemon=True).start()

    def _close_connections(self) -> int:
        """Close every relayed connection on both sides; returns how many."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for end in pair:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()
        return len(pairs)

    def close(self) -> None:
        """Stop listening (new connections are refused) and close every relayed connection (a
        client still waiting sees it break)."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread: close alone does not
        self._listener.close()
        self._close_connections()


def _copy(source: socket.socket, sink: socket.socket, muted: Muted | None) -> None:
    """Copy ``source`` to ``sink``, but the chunks ``muted`` drops; when ``source`` ends (a backend
    that exited, a client that closed), pass the end on unless ``muted(b"")`` drops it, so the
    other side sees its connection closed."""
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            if muted is None or not muted(data):
                sink.sendall(data)
    if muted is None or not muted(b""):
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


class CuttableProxy(Relay):
    """A relay whose connections can be cut, as a network failure cuts them: the client sees its
    connection break while the server's backend lives on and finishes what it was doing (a
    ``COMMIT`` included) until it next talks to the client."""

    def cut(self) -> int:
        """Close every relayed connection on both sides; returns how many."""
        return self._close_connections()


class SilencingProxy(Relay):
    """A relay whose :meth:`silence` drops the server's answers on the connection of one backend
    (found by its process id in the server's startup messages). Without a client-side deadline
    the client waits until TCP gives up (a quarter of an hour to hours)."""

    def __init__(self, dsn: str) -> None:
        self._silenced: set[int] = set()
        super().__init__(dsn, sslmode="disable", gssencmode="disable")  # the startup messages are read

    def silence(self, pid: int) -> None:
        """From now on, drop what the backend ``pid`` sends to its client (its sockets stay open)."""
        with self._lock:
            self._silenced.add(pid)

    def _server_muted(self) -> Muted:
        """Once the backend's id is known (its ``BackendKeyData`` message, sent before its first
        ``ReadyForQuery``), drop its bytes while it is silenced."""
        startup = bytearray()
        pid: list[int | None] = [None]

        def muted(data: bytes) -> bool:
            if pid[0] is None:
                startup.extend(data)
                pid[0] = _backend_pid(bytes(startup))
            with self._lock:
                return pid[0] in self._silenced

        return muted


def _backend_pid(stream: bytes) -> int | None:
    """The process id in the ``BackendKeyData`` message (``K``) of a server's startup messages,
    if it has arrived (each message: a type byte, then its length, which counts itself)."""
    at = 0
    while at + 5 <= len(stream):
        kind = stream[at : at + 1]
        (length,) = struct.unpack("!i", stream[at + 1 : at + 5])
        if kind == b"K":
            return int(struct.unpack("!i", stream[at + 5 : at + 9])[0]) if at + 9 <= len(stream) else None
        at += 1 + length
    return None
