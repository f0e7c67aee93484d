"""A TCP relay in front of the server that can black-hole one backend's connection: the client's
requests still reach the server, but nothing the server answers reaches the client, and both
sockets stay open — a network that stops delivering, a stalled proxy. Without a client-side
deadline the client waits until TCP gives up (a quarter of an hour to hours)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.postgres.helpers import admin


class SilencingProxy:
    """Relays connections to the server; :meth:`silence` drops the server's answers on the
    connection of one backend (found by its process id in the server's startup messages)."""

    def __init__(self, dsn: str) -> None:
        params = conninfo_to_dict(dsn)
        host, port = str(params.get("host") or "127.0.0.1"), int(str(params.get("port") or 5432))
        self._upstream: tuple[socket.AddressFamily, Any] = (
            (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}") if host.startswith("/") else (socket.AF_INET, (host, port))
        )
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen()
        self.dsn = make_conninfo(
            dsn, host="127.0.0.1", port=self._listener.getsockname()[1], sslmode="disable", gssencmode="disable"
        )
        self._lock = threading.Lock()
        self._silenced: set[int] = set()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def silence(self, pid: int) -> None:
        """From now on, drop what the backend ``pid`` sends to its client (its sockets stay open)."""
        with self._lock:
            self._silenced.add(pid)

    def close(self) -> None:
        """Stop listening and close every relayed connection (a client still waiting sees it break)."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for end in sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.socket(self._upstream[0])
            server.connect(self._upstream[1])
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._to_server, args=(client, server), daemon=True).start()
            threading.Thread(target=self._to_client, args=(server, client), daemon=True).start()

    @staticmethod
    def _to_server(client: socket.socket, server: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                server.sendall(data)
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_WR)

    def _to_client(self, server: socket.socket, client: socket.socket) -> None:
        """Relay the server's bytes; once the backend's id is known (its ``BackendKeyData``
        message, sent before its first ``ReadyForQuery``), drop them while it is silenced."""
        pid: int | None = None
        startup = b""
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                if pid is None:
                    startup += data
                    pid = _backend_pid(startup)
                with self._lock:
                    silenced = pid in self._silenced
                if not silenced:
                    client.sendall(data)
        with self._lock:
            silenced = pid in self._silenced
        if not silenced:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_WR)


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


@contextmanager
def silence_while_sleeping(dsn: str, application_name: str, proxy: SilencingProxy) -> Iterator[list[int]]:
    """A thread that silences the connection of the first backend of ``application_name`` found
    sleeping in ``pg_sleep`` (a trigger the test installed); yields ``[backend pid]`` once it did."""
    silenced: list[int] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            with admin(dsn) as conn:
                row = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND wait_event = 'PgSleep'",
                    (application_name,),
                ).fetchone()
            if row:
                proxy.silence(int(row[0]))
                silenced.append(int(row[0]))
                return
            time.sleep(0.01)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield silenced
    finally:
        stop.set()
        thread.join(timeout=10)
