"""The ``STORE`` argument of the reading commands: an SQLite file, or a PostgreSQL URL.

* A path opens :class:`~meerkat_runtime.store.sqlite.SqliteRuntimeStore` with ``read_only=True``:
  nothing is written, not even a ``-wal`` or ``-shm`` file, and no lease can be claimed (the
  store refuses every write). A file at an older schema version is not upgraded: that is
  ``meerkat-runtime migrate``'s job.
* ``postgresql://...`` (or ``postgres://...``) opens
  :class:`~meerkat_runtime.store.postgres.PostgresRuntimeStore` (the ``postgres`` extra) on a
  connection whose transactions are read-only (``default_transaction_read_only=on``): the
  server refuses any write. The store is opened with ``read_only=True``: a schema at an older
  version is not upgraded (a worker does that when it opens the store) and a schema without a
  store is refused, each with one line and exit status 1.

Any other ``RuntimeStore`` can be read with :mod:`meerkat_runtime.inspection` from Python.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from urllib.parse import quote

from meerkat_runtime.cli.usage import (
    CONNINFO_NOT_REPEATED,
    UsageError,
    existing_file,
    failure,
    looks_like_conninfo,
    usage_error,
)
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.store.sqlite import READ_ONLY_UPGRADE_HINT, SqliteRuntimeStore
from meerkat_runtime.store.sqlite_schema import NotAMeerkatStore
from meerkat_runtime.vocab.errors import MeerkatError, ValidationFailed, VersionMismatch

URL_PREFIXES = ("postgresql://", "postgres://")
DEFAULT_PG_SCHEMA = "meerkat"
READ_ONLY_OPTION = "-c default_transaction_read_only=on"
STORE_HELP = (
    "the store: an SQLite store file, or a postgresql:// URL (needs the 'postgres' extra; "
    "opened with read-only transactions)"
)


STORE_TAKES = " (STORE is an SQLite store file or a postgresql:// URL)"


def store_location(raw: str) -> str:
    """An argparse ``type``: a PostgreSQL URL as given, else the path of an existing file. A
    libpq ``key=value`` connection string (the form ``PostgresRuntimeStore`` also takes) is
    refused with the URL to write instead: the command adds its read-only option to a URL, and
    takes one spelling of a server."""
    if raw.startswith(URL_PREFIXES):
        return raw
    if looks_like_conninfo(raw) and not os.path.exists(raw):
        raise argparse.ArgumentTypeError(
            f"{CONNINFO_NOT_REPEATED}: STORE is an SQLite store file or a postgresql:// URL; write "
            "'host=H port=P dbname=D user=U' as postgresql://U@H:P/D (a socket directory as "
            "postgresql://U@/D?host=/dir&port=P)"
        )
    return existing_file(raw, takes=STORE_TAKES)


def is_url(location: str) -> bool:
    return location.startswith(URL_PREFIXES)


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", metavar="STORE", type=store_location, help=STORE_HELP)
    parser.add_argument(
        "--schema",
        default=DEFAULT_PG_SCHEMA,
        help=f"the PostgreSQL schema of the store, for a postgresql:// STORE (default: {DEFAULT_PG_SCHEMA})",
    )


def read_only_url(url: str) -> str:
    """``url`` with its transactions made read-only (an ``options`` parameter added)."""
    if "options=" in url:
        raise UsageError("a postgresql:// STORE must not set 'options' (the command sets read-only transactions)")
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(READ_ONLY_OPTION)}"


def quiet_pool_log() -> None:
    """Keep psycopg_pool's log lines (each failed connection attempt, a warning) off the
    command's stderr: the command reports a failure in one line of its own. Left alone if the
    logger already has a handler."""
    log = logging.getLogger("psycopg.pool")
    if not log.handlers:
        log.addHandler(logging.NullHandler())
        log.propagate = False


def open_read_only(location: str, schema: str) -> RuntimeStore:
    """Open ``location`` so that nothing can be written through it. ``UsageError`` when the
    ``postgres`` extra is missing; the store's own error when it cannot be opened."""
    if not is_url(location):
        return SqliteRuntimeStore(location, read_only=True, integrity_check="off")
    try:
        from meerkat_runtime.store.postgres import PostgresRuntimeStore
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    quiet_pool_log()
    try:
        return PostgresRuntimeStore(
            read_only_url(location), schema=schema, min_connections=0, max_connections=1, read_only=True
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def open_refusal(location: str, exc: MeerkatError) -> str:
    """What the command says of a store it cannot open. An SQLite file at an older schema
    version gets one instruction, the migrate command's (in place of the read-only store's
    advice to open it read-write); ``migrate`` takes no URL, and nothing downgrades a newer
    store, so every other refusal is the store's own message."""
    if isinstance(exc, VersionMismatch) and not is_url(location) and "older than" in exc.detail:
        return f"{str(exc).removesuffix(READ_ONLY_UPGRADE_HINT)} (upgrade it with: meerkat-runtime migrate STORE)"
    return str(exc)


def with_read_only_store(prog: str, args: argparse.Namespace, work: Callable[[RuntimeStore], int]) -> int:
    """Open ``args.store`` read-only, run ``work`` on it and close it. A usage mistake is exit
    status 2; a store that cannot be opened or read (damaged, an older schema, a server that
    refuses) is one line and exit status 1."""
    try:
        store = open_read_only(args.store, args.schema)
    except UsageError as exc:
        return usage_error(prog, exc)
    except NotAMeerkatStore as exc:
        return failure(prog, exc.detail)
    except MeerkatError as exc:
        return failure(prog, open_refusal(args.store, exc))
    try:
        return work(store)
    except ValidationFailed as exc:
        return usage_error(prog, exc)
    except MeerkatError as exc:
        return failure(prog, exc)
    finally:
        store.close()
