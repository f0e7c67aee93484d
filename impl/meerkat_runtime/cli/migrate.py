"""``meerkat-runtime migrate PATH``: bring an SQLite store file written by an older release to this
release's schema, saying what each step adds; nothing is changed when it is current already.

The version is read first without writing. An upgrade is what opening the file read-write does
(:class:`~meerkat_runtime.store.sqlite.SqliteRuntimeStore`): the write-ahead log and page checks,
then every missing step in one transaction, so the file is never left half-migrated.
"""

from __future__ import annotations

import argparse
import sqlite3

from meerkat_runtime.cli.store_arg import URL_PREFIXES, is_url
from meerkat_runtime.cli.usage import EXIT_OK, existing_file, failure, usage_error
from meerkat_runtime.store.sqlite import SqliteRuntimeStore
from meerkat_runtime.store.sqlite_check import read_only_connection
from meerkat_runtime.store.sqlite_schema import (
    SCHEMA_VERSION,
    STEP_NOTES,
    NotAMeerkatStore,
    not_a_store,
    stored_version,
)
from meerkat_runtime.vocab.errors import MeerkatError

NAME = "migrate"
HELP = "upgrade an SQLite store file written by an older release to this release's schema"
PROG = f"meerkat-runtime {NAME}"


def _path(raw: str) -> str:
    """An argparse ``type``: a URL as given (refused in :func:`run` with what to do instead), else
    an existing file (a ``key=value`` connection string is refused as one)."""
    return raw if raw.startswith(URL_PREFIXES) else existing_file(raw)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", metavar="PATH", type=_path, help="the SQLite store file")
    parser.add_argument("--dry-run", action="store_true", help="say what would be done; change nothing")
    parser.epilog = (
        f"This release writes schema version {SCHEMA_VERSION}. Stop every worker of the older release first. "
        "A PostgreSQL store needs no command: it upgrades its schema when a worker opens it. "
        "exit status: 0 upgraded, or already current (nothing changed), or --dry-run; 1 nothing changed: the file "
        "is not a meerkat store, was written by a newer release, is damaged, is locked by a writer, or (schema "
        "version 3) a worker of the older release holds a live lease in it; 2 usage "
        "error (e.g. PATH does not exist, a postgresql:// URL); 130 interrupted (Ctrl-C)"
    )


def _version(path: str) -> int:
    """The file's schema version; ``NotAMeerkatStore`` for a file without one."""
    with read_only_connection(path) as (conn, _how):
        found = stored_version(conn)
        if found == 0:
            raise not_a_store(conn, path)
        return found


def run(args: argparse.Namespace) -> int:
    if is_url(args.store):
        return usage_error(PROG, "migrate works on SQLite store files; a PostgreSQL store upgrades when opened")
    path = args.store
    try:
        found = _version(path)
    except NotAMeerkatStore as exc:
        return failure(PROG, f"{exc.detail}; nothing was changed")
    except (sqlite3.Error, MeerkatError) as exc:
        return failure(PROG, f"cannot read the schema version of {path!r}: {exc}")
    if found > SCHEMA_VERSION:
        return failure(
            PROG,
            f"{path!r} has schema version {found}, written by a newer release (this one knows {SCHEMA_VERSION}); "
            "nothing was changed",
        )
    if found == SCHEMA_VERSION:
        print(f"{path}: already at schema version {SCHEMA_VERSION}; nothing to do (nothing was changed)")
        return EXIT_OK
    steps = [f"  {version}: {STEP_NOTES[version]}" for version in range(found + 1, SCHEMA_VERSION + 1)]
    if args.dry_run:
        print(f"{path}: would upgrade schema version {found} to {SCHEMA_VERSION} (dry run: nothing was changed):")
        print("\n".join(steps))
        return EXIT_OK
    try:
        store = SqliteRuntimeStore(path)
    except MeerkatError as exc:
        return failure(PROG, f"nothing was changed: {exc}")
    try:
        now = store.settings()["schema_version"]
    except MeerkatError as exc:
        return failure(PROG, exc)
    finally:
        store.close()
    print(f"{path}: upgraded schema version {found} to {now}, in one transaction:")
    print("\n".join(steps))
    return EXIT_OK
