"""A new SQLite metadata DB is migrated with `PRAGMA synchronous=OFF` and synced once at the end
(bootstrap/new_sqlite.py); a DB that has a revision, and any other dialect, keep SQLite's defaults.

Real SQLite through SQLAlchemy, as Superset's migration environment opens it (an engine of its own
built inside the context); the full first-start bootstrap against Superset is test_bootstrap.py.
"""

from __future__ import annotations

from pathlib import Path

from fixtures.common import SettingsFactory
from sqlalchemy import create_engine, text
from superset_async_glue.bootstrap.new_sqlite import unsynced_while_new
from superset_async_glue.loading import load_settings

FULL, OFF = 2, 0


def _synchronous(path: Path) -> int:
    """PRAGMA synchronous on a new engine's connection: what a migration script's commit would use."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            return int(connection.execute(text("PRAGMA synchronous")).scalar_one())
    finally:
        engine.dispose()


def test_a_new_sqlite_db_is_written_without_fsync_only_while_migrating(make_settings: SettingsFactory) -> None:
    settings = load_settings(make_settings())
    path = Path(str(settings.sqlite_path()))
    assert path is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    with unsynced_while_new(settings, current_revisions=set()):
        assert _synchronous(path) == OFF
    assert _synchronous(path) == FULL  # the listener is gone: the web and worker keep SQLite's default


def test_a_db_with_a_revision_is_migrated_with_sqlites_defaults(make_settings: SettingsFactory) -> None:
    settings = load_settings(make_settings())
    path = Path(str(settings.sqlite_path()))
    assert path is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    with unsynced_while_new(settings, current_revisions={"4b2a8c9d3e1f"}):
        assert _synchronous(path) == FULL


def test_another_dialect_is_left_alone(make_settings: SettingsFactory, tmp_path: Path) -> None:
    settings = load_settings(make_settings({"metadata_db": {"uri": "postgresql://superset@db.example/superset"}}))
    assert settings.sqlite_path() is None
    with unsynced_while_new(settings, current_revisions=set()):
        assert _synchronous(tmp_path / "other.db") == FULL
