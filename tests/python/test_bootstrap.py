"""`superset-async bootstrap` against real Superset metadata (SQLite) and the stack's real ClickHouse."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from fixtures.common import SettingsFactory, free_port, run_cli, write_secret
from fixtures.stack import Stack

STEP_LINE = "bootstrap: {step}: {outcome}"


def metadata_snapshot(sqlite_file: Path) -> dict[str, Any]:
    """What bootstrap may change: schema revision, users, roles' permissions, registered databases."""
    with sqlite3.connect(sqlite_file) as db:
        return {
            "alembic": db.execute("SELECT version_num FROM alembic_version").fetchall(),
            "users": db.execute("SELECT id, username, password, changed_on FROM ab_user ORDER BY id").fetchall(),
            "permission_views": db.execute("SELECT count(*) FROM ab_permission_view").fetchall(),
            "role_permissions": db.execute("SELECT count(*) FROM ab_permission_view_role").fetchall(),
            "dbs": db.execute("SELECT * FROM dbs ORDER BY id").fetchall(),
        }


def test_the_stack_bootstrap_created_everything_on_first_run(stack: Stack) -> None:
    log = (stack.state_dir / "logs" / "bootstrap.log").read_text()
    for step in (
        "migrations",
        "init",
        f"admin '{stack.admin_username}'",
        f"database '{stack.clickhouse_database_name}'",
    ):
        assert STEP_LINE.format(step=step, outcome="created") in log
    assert stack.stack_json()["bootstrap"]["summary"].startswith("bootstrap: 4 step(s) changed")
    # One fsync per commit instead of four, for the web and the worker (bootstrap/sqlite_wal.py).
    with sqlite3.connect(stack.state_dir / "superset.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_second_bootstrap_is_a_no_op(stack: Stack) -> None:
    sqlite_file = stack.state_dir / "superset.db"
    marker = stack.state_dir / "superset-async-init.json"
    before, marker_before = metadata_snapshot(sqlite_file), marker.stat().st_mtime_ns

    result = run_cli("bootstrap", "--settings", str(stack.settings_path), "--config", str(stack.config_path))

    assert result.code == 0, result.stdout + result.stderr
    steps = [line for line in result.stdout.splitlines() if line.startswith("bootstrap: ")]
    expected = ["migrations", "init", f"admin '{stack.admin_username}'", f"database '{stack.clickhouse_database_name}'"]
    for step in expected:
        assert any(line.startswith(STEP_LINE.format(step=step, outcome="unchanged")) for line in steps), result.stdout
    assert result.stdout.splitlines()[-1].startswith("bootstrap: nothing changed in ")
    assert metadata_snapshot(sqlite_file) == before
    assert marker.stat().st_mtime_ns == marker_before
    assert stack.admin_password() not in result.stdout + result.stderr


def test_changed_declaration_updates_the_database_through_superset(stack: Stack, tmp_path: Path) -> None:
    data = json.loads(stack.settings_path.read_text())
    data["databases"][0]["allow_dml"] = True
    changed = tmp_path / "settings.json"
    changed.write_text(json.dumps(data))
    try:
        result = run_cli("bootstrap", "--settings", str(changed), "--config", str(stack.config_path))
        assert result.code == 0, result.stdout + result.stderr
        assert f"database '{stack.clickhouse_database_name}': updated (changed: allow_dml)" in result.stdout
        with sqlite3.connect(stack.state_dir / "superset.db") as db:
            row = db.execute("SELECT allow_dml FROM dbs WHERE database_name = ?", (stack.clickhouse_database_name,))
            assert row.fetchone() == (1,)
    finally:  # back to the stack's declaration, for the other tests
        restored = run_cli("bootstrap", "--settings", str(stack.settings_path), "--config", str(stack.config_path))
        assert "updated (changed: allow_dml)" in restored.stdout, restored.stdout + restored.stderr


def test_unreachable_database_is_reported_and_the_other_steps_complete(
    stack: Stack, make_settings: SettingsFactory, tmp_path: Path
) -> None:
    """On a new metadata DB: migrations, init, admin and the reachable database are all created; the
    unreachable one fails with its name and the driver's message; exit code 1."""
    stack_settings = json.loads(stack.settings_path.read_text())
    reachable = stack_settings["databases"][0]
    dead_port = free_port()  # nothing listens there
    settings = make_settings(
        {
            "admin": {"password_file": str(write_secret(tmp_path / "admin_password"))},
            "databases": [
                {
                    "name": "Unreachable CH",
                    "uri": f"clickhousedb://superset@127.0.0.1:{dead_port}/demo",
                    "password_file": reachable["password_file"],
                },
                reachable,
            ],
        }
    )
    config = tmp_path / "superset_config.py"
    assert run_cli("render", "--settings", str(settings), "-o", str(config)).code == 0

    result = run_cli("bootstrap", "--settings", str(settings), "--config", str(config), timeout=300)

    assert result.code == 1, result.stdout + result.stderr
    out = result.stdout
    failed = next(line for line in out.splitlines() if line.startswith("bootstrap: database 'Unreachable CH'"))
    assert failed.startswith("bootstrap: database 'Unreachable CH': failed (cannot connect to clickhousedb://superset@")
    assert "Connection refused" in failed  # the driver's own words
    assert f"port={dead_port}" in failed or f":{dead_port}" in failed
    for step in ("migrations", "init", "admin 'admin'", f"database '{reachable['name']}'"):
        assert STEP_LINE.format(step=step, outcome="created") in out, out
    assert out.splitlines()[-1].startswith("bootstrap: 1 step(s) failed: database 'Unreachable CH'")
    password = Path(reachable["password_file"]).read_text().strip()
    assert password not in out + result.stderr
    digest = hashlib.sha256(password.encode()).hexdigest()
    assert digest not in out


def test_bootstrap_reports_bad_settings_without_importing_superset(tmp_path: Path) -> None:
    bad = tmp_path / "settings.json"
    bad.write_text('{"secret_key_file": "relative/path"}')
    config = tmp_path / "superset_config.py"
    config.write_text("")
    result = run_cli("bootstrap", "--settings", str(bad), "--config", str(config))
    assert result.code == 2
    assert "secret_key_file" in result.stderr
