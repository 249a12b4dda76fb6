"""Metadata DB migrations: compare the database's alembic revision with Superset's heads, upgrade if behind."""

from __future__ import annotations

import sys
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from ..settings import Settings
from .backups import backup_before_upgrade
from .new_sqlite import unsynced_while_new
from .result import Outcome, StepResult
from .sqlite_wal import MODE, use_write_ahead_log

STEP = "migrations"


def migration_heads() -> set[str]:
    """The head revisions of Superset's own migration scripts."""
    import superset  # noqa: PLC0415
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    directory = Path(superset.__file__).parent / "migrations"
    return set(ScriptDirectory(str(directory)).get_heads())


def current_revisions(db: Any) -> set[str]:
    """The revisions the metadata database is at (empty for a new database)."""
    from alembic.migration import MigrationContext  # noqa: PLC0415

    with db.engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def migrate(settings: Settings) -> StepResult:
    """Upgrade the metadata DB to head, only when it is not there already, after dumping it (backups.py);
    then keep a SQLite one in write-ahead-log mode (sqlite_wal.py).

    A new (empty) metadata DB has nothing to back up; `metadata_db.backups_kept = 0` turns dumps off.
    """
    result = _upgrade(settings)
    if result.outcome is Outcome.FAILED:
        return result
    from superset import db  # noqa: PLC0415

    db.session.remove()
    db.engine.dispose()  # the switch to WAL needs the only connection to the file
    journal = use_write_ahead_log(settings)
    if journal is not None and journal != MODE:
        held = "another process holds the DB; the next bootstrap retries"
        detail = f"{result.detail}; not switched to WAL (journal mode {journal}: {held})"
        return StepResult(result.step, result.outcome, detail)
    return result


def _upgrade(settings: Settings) -> StepResult:
    import flask_migrate  # noqa: PLC0415
    from superset import db  # noqa: PLC0415

    heads = migration_heads()
    current = current_revisions(db)
    if current == heads:
        return StepResult(STEP, Outcome.UNCHANGED, f"metadata DB at head {_fmt(heads)}; nothing to migrate, no backup")
    backup = ""
    if current and settings.metadata_db.backups_kept > 0:
        dump = backup_before_upgrade(settings, current)
        backup = f"; backup {dump.parent.name}/{dump.name}"
    # The same code path as `superset db upgrade`; its scripts print progress, which belongs in the log.
    # A new SQLite DB is synced to disk once at the end, not at each script's commit (new_sqlite.py).
    with redirect_stdout(sys.stderr), unsynced_while_new(settings, current):
        flask_migrate.upgrade()
    db.session.remove()
    after = current_revisions(db)
    if after != heads:
        return StepResult(STEP, Outcome.FAILED, f"upgrade ended at {_fmt(after)}, expected head {_fmt(heads)}")
    if not current:
        return StepResult(STEP, Outcome.CREATED, f"new metadata DB upgraded to head {_fmt(heads)}")
    return StepResult(STEP, Outcome.UPDATED, f"upgraded from {_fmt(current)} to {_fmt(heads)}{backup}")


def _fmt(revisions: set[str]) -> str:
    return ",".join(sorted(revisions)) or "none"
