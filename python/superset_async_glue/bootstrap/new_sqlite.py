"""A new SQLite metadata DB is migrated without waiting for the disk after every statement.

Superset's 344 migration scripts commit one transaction per script on SQLite, and SQLite's default
(`PRAGMA synchronous=FULL`) waits for the disk at each commit: about 2,900 `fdatasync` calls, 4.5 s
of a first start's wall time on a 2-core VM with a virtual disk (docs/performance.md). For a DB that
did not exist before this run there is nothing to protect yet, so while the migrations create it
every SQLite connection runs with `PRAGMA synchronous=OFF`, and when they end the file and its
directory are synced once. The migrations, and therefore the schema, are the same; only when the
bytes reach the disk changes.

What that costs: a process killed mid-migration leaves the same DB as with FULL (SQLite's journal
protects against that either way); a power loss or kernel crash during the very first migration may
leave an unusable new file, which holds no data yet: delete it and start again. A DB that already has
a revision (an upgrade of a DB in use) is migrated with SQLite's defaults, and other dialects never
see this.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..settings import Settings


def _synchronous_off(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA synchronous=OFF")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def unsynced_while_new(settings: Settings, current_revisions: set[str]) -> Iterator[None]:
    """Within: new SQLite connections skip fsync, when the metadata DB is SQLite and has no revision yet."""
    file = settings.sqlite_path()
    if file is None or current_revisions:
        yield
        return
    from sqlalchemy import event  # noqa: PLC0415 - bootstrap imports SQLAlchemy with Superset
    from sqlalchemy.engine import Engine  # noqa: PLC0415

    # On the Engine class: Superset's migration environment builds its own engine from the config.
    event.listen(Engine, "connect", _synchronous_off)
    try:
        yield
    finally:
        event.remove(Engine, "connect", _synchronous_off)
    path = Path(file)
    if path.exists():  # once, for everything the migrations wrote
        _fsync(path)
        _fsync(path.parent)
