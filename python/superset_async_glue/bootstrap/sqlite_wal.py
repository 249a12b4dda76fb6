"""A SQLite metadata DB is kept in write-ahead-log mode: one fsync per commit instead of four.

In SQLite's default rollback-journal mode each commit syncs the journal twice, the database file and
its directory: `strace` counted 11 commits and 44 `fsync`/`fdatasync` calls for one async SQL Lab
query (web and worker together), 7 commits and 28 calls for a sync one (docs/performance.md). In WAL
mode, with the same `synchronous=FULL`, a commit appends to the `-wal` file and syncs it once: a
committed transaction survives a power loss exactly as before. Readers no longer block the writer,
which the web's threads and the worker's children, all on one file, feel as fewer "database is
locked" waits.

The mode is stored in the database file, so bootstrap sets it once, while no role is running (the
switch needs the only connection). The `-wal` and `-shm` files live beside the database in the state
directory, which is why this is for a local file only (SQLite's WAL does not work over a network
file system, which SQLite does not support for the metadata DB either way).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..settings import Settings

MODE = "wal"


def use_write_ahead_log(settings: Settings, timeout: float = 5.0) -> str | None:
    """Switch the SQLite metadata DB to WAL; the journal mode it has afterwards (None: not SQLite).

    A DB another process holds open in a transaction keeps its mode (SQLite answers with the old
    one, or stays locked past `timeout`); the caller reports that and the next bootstrap tries again.
    """
    path = settings.sqlite_path()
    if path is None or not Path(path).exists():
        return None
    connection = sqlite3.connect(path, timeout=timeout)
    try:
        return str(connection.execute(f"PRAGMA journal_mode={MODE}").fetchone()[0]).lower()
    except sqlite3.OperationalError as error:  # locked by another process past the timeout
        return f"unknown ({error})"
    finally:
        connection.close()
