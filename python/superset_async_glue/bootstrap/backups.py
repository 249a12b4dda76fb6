"""A dump of the metadata DB taken just before migrations change it, kept in <state_dir>/backups.

Superset's migrations do not always downgrade, so rolling a deployment back means restoring the
metadata DB as it was before the upgrade (docs/upgrades.md). Each dump is named by UTC time and the
alembic revision it holds (`superset-20261130T094500Z-<revision>.sqlite3` or `.pgdump`), written
0600 under a temporary name and renamed when complete, and only the newest
`metadata_db.backups_kept` dumps are kept.

- SQLite: an online copy through SQLite's backup API (consistent even while Superset writes).
- PostgreSQL: `pg_dump --format=custom`; the password reaches it through a 0600 PGPASSFILE that
  exists only while it runs, never through its arguments or environment values.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

from ..debian_postgresql import debian_postgresql_bin
from ..errors import GlueError
from ..secret_io import make_private_dirs, read_secret
from ..settings import Settings

DIRECTORY = "backups"
PREFIX = "superset-"
SUFFIXES = (".sqlite3", ".pgdump")


class BackupError(GlueError):
    """The metadata DB could not be dumped; migrations do not run without their backup."""


def backups_dir(settings: Settings) -> Path:
    return Path(settings.state_dir) / DIRECTORY


def backup_before_upgrade(settings: Settings, revisions: set[str]) -> Path:
    """Dump the metadata DB (at `revisions`) into backups_dir, prune to the newest N, return the dump."""
    directory = backups_dir(settings)
    make_private_dirs(directory)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    revision = "+".join(sorted(revisions)) or "empty"
    sqlite_file = settings.sqlite_path()
    if sqlite_file is not None:
        target = directory / f"{PREFIX}{stamp}-{revision}.sqlite3"
        _copy_sqlite(Path(sqlite_file), target)
    else:
        target = directory / f"{PREFIX}{stamp}-{revision}.pgdump"
        _pg_dump(settings, target)
    prune(directory, settings.metadata_db.backups_kept)
    return target


def existing_backups(directory: Path) -> list[Path]:
    """The complete dumps in `directory`, oldest first (the names sort by time)."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.name.startswith(PREFIX) and p.name.endswith(SUFFIXES)]
    return sorted(found, key=lambda p: p.name)


def prune(directory: Path, keep: int) -> None:
    dumps = existing_backups(directory)
    for old in dumps[: max(len(dumps) - keep, 0)]:
        old.unlink(missing_ok=True)


def _partial(target: Path) -> Path:
    """Where a dump is written until complete; never matched by existing_backups."""
    return target.with_name(f".{target.name}.partial")


def _create_private(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _copy_sqlite(source: Path, target: Path) -> None:
    partial = _partial(target)
    partial.unlink(missing_ok=True)
    _create_private(partial)  # 0600 before SQLite writes a byte into it
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
        partial.replace(target)
    except sqlite3.Error as error:
        partial.unlink(missing_ok=True)
        raise BackupError(f"metadata DB backup: copying {source} failed: {error}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def pg_dump_binary(local_server: bool = False) -> str:
    """pg_dump from PATH, else the newest of Debian's /usr/lib/postgresql/<version>/bin.

    For the runner's own PostgreSQL (`local_server`), Debian's first: the server is that version's.
    """
    found = None if local_server else shutil.which("pg_dump")
    if found:
        return found
    debian = debian_postgresql_bin()
    if debian is not None and (debian / "pg_dump").exists():
        return str(debian / "pg_dump")
    raise BackupError(
        "metadata DB backup: pg_dump not found on PATH; install PostgreSQL's client tools "
        "(or set metadata_db.backups_kept = 0 to migrate without a backup)"
    )


def libpq_uri(sqlalchemy_uri: str) -> str:
    """The metadata URI as libpq reads it: `postgresql+psycopg2://...` -> `postgresql://...`."""
    scheme, sep, rest = sqlalchemy_uri.partition("://")
    if not sep or scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise BackupError(
            f"metadata DB backup: no backup method for a {scheme!r} metadata DB (SQLite and PostgreSQL have one);"
            " set metadata_db.backups_kept = 0 to migrate without a backup"
        )
    return f"postgresql://{rest}"


def pgpass_line(password: str) -> str:
    r"""A .pgpass entry matching any host, port, database and user; `\` and `:` escaped as libpq reads them."""
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    return f"*:*:*:*:{escaped}\n"


def _pg_dump(settings: Settings, target: Path) -> None:
    uri = libpq_uri(settings.metadata_uri())
    env = {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD", "PGPASSFILE")}
    pgpass = target.with_name(f".{target.name}.pgpass")
    partial = _partial(target)
    try:
        if settings.metadata_db.password_file:
            password = read_secret(
                "metadata_db.password_file", settings.metadata_db.password_file, "metadata_db_password"
            )
            pgpass.unlink(missing_ok=True)
            _create_private(pgpass)
            pgpass.write_text(pgpass_line(password), encoding="utf-8")
            env["PGPASSFILE"] = str(pgpass)  # a path, not the password
        partial.unlink(missing_ok=True)
        _create_private(partial)
        command = [
            pg_dump_binary(settings.metadata_db.local_postgresql),
            "--format=custom",
            "--no-password",
            f"--file={partial}",
            f"--dbname={uri}",
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BackupError(f"metadata DB backup: pg_dump exited {done.returncode}: {done.stderr.strip()}")
        partial.replace(target)
    finally:
        pgpass.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
