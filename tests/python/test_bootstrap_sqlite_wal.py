"""A SQLite metadata DB is switched to write-ahead-log mode by bootstrap (bootstrap/sqlite_wal.py).

Real SQLite files; the full bootstrap against Superset, which leaves its DB in WAL mode, is
test_bootstrap.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fixtures.common import SettingsFactory
from superset_async_glue.bootstrap.sqlite_wal import use_write_ahead_log
from superset_async_glue.loading import load_settings


def _journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])


def _new_db(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE t (x INTEGER)")
    connection.commit()
    connection.close()


def test_a_sqlite_metadata_db_is_switched_to_wal_and_stays_so(make_settings: SettingsFactory) -> None:
    settings = load_settings(make_settings())
    path = Path(str(settings.sqlite_path()))
    _new_db(path)
    assert _journal_mode(path) == "delete"  # SQLite's default: four syncs per commit
    assert use_write_ahead_log(settings) == "wal"
    assert _journal_mode(path) == "wal"  # stored in the file: every later connection uses it
    assert use_write_ahead_log(settings) == "wal"  # and switching again is harmless


def test_a_db_held_in_a_transaction_keeps_its_mode_and_says_so(make_settings: SettingsFactory) -> None:
    settings = load_settings(make_settings())
    path = Path(str(settings.sqlite_path()))
    _new_db(path)
    holder = sqlite3.connect(path)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        assert use_write_ahead_log(settings, timeout=0.1) == "unknown (database is locked)"
    finally:
        holder.rollback()
        holder.close()
    assert _journal_mode(path) == "delete"


def test_no_file_or_another_dialect_is_left_alone(make_settings: SettingsFactory) -> None:
    assert use_write_ahead_log(load_settings(make_settings())) is None  # no DB yet: bootstrap creates it
    settings = load_settings(make_settings({"metadata_db": {"uri": "postgresql://superset@db.example/superset"}}))
    assert use_write_ahead_log(settings) is None
