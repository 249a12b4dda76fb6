"""Bootstrap's fast path (bootstrap/fingerprint.py): when a recorded full run still holds, and when not.

No Superset here: a real SQLite metadata file with an alembic_version table, the rendered config
and real secret files; the full bootstrap against Superset is tests/python/test_bootstrap.py.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from fixtures.common import SettingsFactory, write_secret
from superset_async_glue.bootstrap import fingerprint
from superset_async_glue.loading import load_settings
from superset_async_glue.render import render_config
from superset_async_glue.settings import Settings


def _metadata(path: Path, revision: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL)")
        db.execute("DELETE FROM alembic_version")
        db.execute("INSERT INTO alembic_version VALUES (?)", (revision,))


@pytest.fixture
def recorded(make_settings: SettingsFactory, tmp_path: Path) -> tuple[Settings, Path, Path]:
    """Settings with a database password, their rendered config, a metadata DB at revision 'abc', a marker."""
    password = write_secret(tmp_path / "ch_password", "ch-secret-value-1234")
    redis_password = write_secret(tmp_path / "redis_password")
    path = make_settings(
        {
            "redis": {"password_file": str(redis_password)},
            "databases": [
                {"name": "CH", "uri": "clickhousedb://superset@127.0.0.1:8123/demo", "password_file": str(password)}
            ],
        }
    )
    settings = load_settings(path)
    config = tmp_path / "superset_config.py"
    config.write_text(render_config(settings))
    _metadata(Path(settings.state_dir) / "superset.db", "abc")
    fingerprint.record(settings, config, "2026-11-30 09:00:00 UTC")
    return settings, config, password


def test_a_recorded_run_holds_and_the_marker_holds_no_secret(recorded: tuple[Settings, Path, Path]) -> None:
    settings, config, _ = recorded
    assert fingerprint.is_current(settings, config) == "2026-11-30 09:00:00 UTC"
    marker = fingerprint.marker_path(settings)
    assert marker.stat().st_mode & 0o077 == 0
    text = marker.read_text()
    assert "ch-secret-value-1234" not in text
    assert json.loads(text)["metadata_revisions"] == ["abc"]


def test_a_new_metadata_revision_or_a_missing_db_means_a_full_run(recorded: tuple[Settings, Path, Path]) -> None:
    settings, config, _ = recorded
    database = Path(settings.state_dir) / "superset.db"
    _metadata(database, "def")  # migrated elsewhere, or restored from another backup
    assert fingerprint.is_current(settings, config) is None
    database.unlink()
    assert fingerprint.is_current(settings, config) is None
    assert not database.exists()  # the check never creates an empty metadata file


def test_a_changed_config_or_database_password_means_a_full_run(recorded: tuple[Settings, Path, Path]) -> None:
    settings, config, password = recorded
    original = config.read_text()
    config.write_text(original + "\n# changed\n")
    assert fingerprint.is_current(settings, config) is None
    config.write_text(original)
    assert fingerprint.is_current(settings, config) is not None
    write_secret(password, "another-password-5678")
    assert fingerprint.is_current(settings, config) is None


def test_forget_removes_the_marker(recorded: tuple[Settings, Path, Path]) -> None:
    settings, config, _ = recorded
    fingerprint.forget(settings)
    assert fingerprint.is_current(settings, config) is None
