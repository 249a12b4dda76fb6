"""Bootstrap's metadata DB dumps before migrations (bootstrap/backups.py), on real SQLite and PostgreSQL.

No Superset import: the dump is a function of the settings and the metadata DB's alembic revision;
that migrate() calls it only when behind is covered by the stack's bootstrap tests.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fixtures.common import write_secret
from superset_async_glue.bootstrap.backups import (
    BackupError,
    backup_before_upgrade,
    backups_dir,
    debian_postgresql_bin,
    existing_backups,
    pgpass_line,
)
from superset_async_glue.settings import Settings


def settings_for(tmp_path: Path, **metadata_db: Any) -> Settings:
    state = tmp_path / "state"
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Settings.model_validate(
        {
            "state_dir": str(state),
            "secret_key_file": str(write_secret(tmp_path / "secret_key")),
            "global_async_queries": {"jwt_secret_file": str(write_secret(tmp_path / "gaq"))},
            "metadata_db": metadata_db,
        }
    )


def sqlite_metadata(settings: Settings, revision: str) -> Path:
    path = Path(str(settings.sqlite_path()))
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL)")
        db.execute("DELETE FROM alembic_version")
        db.execute("INSERT INTO alembic_version VALUES (?)", (revision,))
    return path


def test_sqlite_dump_is_a_private_consistent_copy_named_by_time_and_revision(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    source = sqlite_metadata(settings, "a1b2c3")
    reader = sqlite3.connect(source)  # an open connection (a running Superset) does not stop the copy
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM alembic_version").fetchall()

    dump = backup_before_upgrade(settings, {"a1b2c3"})
    reader.close()

    assert dump.parent == backups_dir(settings)
    assert dump.name.startswith("superset-") and dump.name.endswith("-a1b2c3.sqlite3")
    assert dump.stat().st_mode & 0o777 == 0o600
    assert dump.parent.stat().st_mode & 0o777 == 0o700
    with sqlite3.connect(dump) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("a1b2c3",)]
    assert [p.name for p in dump.parent.iterdir()] == [dump.name]  # no partial file left


def test_only_the_newest_dumps_are_kept(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, backups_kept=2)
    sqlite_metadata(settings, "r1")
    directory = backups_dir(settings)
    directory.mkdir(mode=0o700)
    for stamp in ("20200101T000000Z", "20210101T000000Z", "20220101T000000Z"):
        (directory / f"superset-{stamp}-old.sqlite3").write_bytes(b"")
    (directory / "notes.txt").write_text("not a dump: never pruned")

    dump = backup_before_upgrade(settings, {"r1"})

    assert [p.name for p in existing_backups(directory)] == ["superset-20220101T000000Z-old.sqlite3", dump.name]
    assert (directory / "notes.txt").exists()


def test_a_metadata_db_without_a_backup_method_is_refused_with_the_fix(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, uri="mysql://superset@localhost/superset")
    with pytest.raises(BackupError, match=r"backups_kept = 0"):
        backup_before_upgrade(settings, {"r1"})


@pytest.mark.parametrize(
    ("password", "line"),
    [("plain", "*:*:*:*:plain\n"), ("a:b\\c", "*:*:*:*:a\\:b\\\\c\n")],
)
def test_pgpass_line_escapes_what_libpq_reads_as_separators(password: str, line: str) -> None:
    assert pgpass_line(password) == line


# --- PostgreSQL: a private cluster, as a non-root user (PostgreSQL refuses root) ---------------------


@dataclass(frozen=True)
class Cluster:
    socket_dir: Path
    password: str


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    bindir = debian_postgresql_bin()
    if bindir is None:
        pytest.fail("PostgreSQL's server binaries are not installed (/usr/lib/postgresql/<version>/bin)")
    user = "nobody" if os.geteuid() == 0 else None
    # Not under pytest's tmp_path: its 0700 root-owned parents would stop `nobody` from reaching it.
    home = Path(tempfile.mkdtemp(prefix="pg-backup-test-"))
    data = home / "data"
    password = "pw:with\\separators"
    pwfile = home / "pwfile"
    pwfile.write_text(password + "\n")
    if user:
        shutil.chown(home, user)
        shutil.chown(pwfile, user)

    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, user=user, cwd=home)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "superset", "--auth=scram-sha-256", f"--pwfile={pwfile}")
        pwfile.unlink()
        options = f"-k {home} -c listen_addresses= -c fsync=off"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l", str(home / "log"), "start")
        try:
            yield Cluster(home, password)
        finally:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_postgresql_dump_uses_the_password_file_and_restores(cluster: Cluster, tmp_path: Path) -> None:
    uri = f"postgresql+psycopg2://superset@/postgres?host={cluster.socket_dir}"
    good = settings_for(tmp_path, uri=uri, password_file=str(write_secret(tmp_path / "pg", cluster.password)))

    import psycopg2  # noqa: PLC0415 - the metadata DB's driver, only for this test's table

    with psycopg2.connect(
        host=str(cluster.socket_dir), user="superset", dbname="postgres", password=cluster.password
    ) as db:
        db.cursor().execute("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL)")

    dump = backup_before_upgrade(good, {"rev9"})

    assert dump.name.endswith("-rev9.pgdump") and dump.stat().st_mode & 0o777 == 0o600
    listing = subprocess.run(
        [str(shutil.which("pg_restore") or "pg_restore"), "--list", str(dump)], capture_output=True, text=True
    )
    assert listing.returncode == 0 and "TABLE public alembic_version" in listing.stdout, listing.stderr
    assert [p.name for p in dump.parent.iterdir()] == [dump.name]  # the PGPASSFILE is gone

    wrong = settings_for(tmp_path / "x", uri=uri, password_file=str(write_secret(tmp_path / "bad", "nope")))
    with pytest.raises(BackupError, match="password authentication failed"):
        backup_before_upgrade(wrong, {"rev9"})
    assert existing_backups(backups_dir(wrong)) == []
