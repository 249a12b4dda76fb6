"""`superset-async bootstrap`: bring Superset's metadata DB to the state the settings declare, idempotently.

Steps, in order: migrations (only when behind), `superset init` (only when Superset or its schema
changed), the admin user (only when missing), then each declared database (created, updated or
left alone). A failing database does not stop the others; the report says what each step did.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import GlueError
from ..settings import Settings
from . import fingerprint
from .admin import ensure_admin
from .app import superset_app
from .databases import upsert_database
from .fast_path import step_names, unchanged_report
from .migrations import STEP as MIGRATIONS
from .migrations import migrate, migration_heads
from .result import BootstrapReport, Outcome, StepResult
from .roles import STEP as INIT
from .roles import init_roles

__all__ = ["BootstrapReport", "Outcome", "StepResult", "run_bootstrap"]


def run_bootstrap(
    settings: Settings, config_path: Path, emit: Callable[[StepResult], None] = lambda _: None
) -> BootstrapReport:
    """Run every step inside Superset's app; `emit` sees each result as soon as it is known.

    When nothing a step reads changed since the last full run (fingerprint.py), every step is
    reported unchanged without importing Superset.
    """
    report = BootstrapReport()

    def record(result: StepResult) -> StepResult:
        report.steps.append(result)
        emit(result)
        return result

    unchanged = unchanged_report(settings, config_path)
    if unchanged is not None:
        for result in unchanged.steps:
            record(result)
        return report
    fingerprint.forget(settings)
    _run_steps(settings, config_path, record)
    if report.exit_code == 0:
        with contextlib.suppress(GlueError, OSError):  # no marker: the next run is a full one, that is all
            fingerprint.record(settings, config_path, time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
    return report


def _run_steps(settings: Settings, config_path: Path, record: Callable[[StepResult], StepResult]) -> None:
    with superset_app(settings, config_path) as app:
        from flask import g  # noqa: PLC0415 - Flask only once Superset's app exists

        migrated = record(_guarded(MIGRATIONS, lambda: migrate(settings)))
        if migrated.outcome is Outcome.FAILED:
            for name in step_names(settings)[1:]:
                record(StepResult(name, Outcome.SKIPPED, "migrations failed"))
            return
        record(_guarded(INIT, lambda: init_roles(settings, migration_heads())))
        admin_result, admin_user = _guarded_admin(settings)
        record(admin_result)
        # The command layer runs as a user (created_by, permission sync): the admin.
        g.user = admin_user
        timeout = int(app.config["TEST_DATABASE_CONNECTION_TIMEOUT"].total_seconds())
        for declared in settings.databases:
            step = f"database '{declared.name}'"
            if admin_user is None:
                record(StepResult(step, Outcome.SKIPPED, "no admin user to act as"))
                continue
            record(_guarded(step, lambda d=declared: upsert_database(d, timeout)))  # type: ignore[misc]


def _guarded(step: str, action: Callable[[], StepResult]) -> StepResult:
    """Run a step; an unexpected error fails that step with its message instead of ending bootstrap."""
    try:
        return action()
    except Exception as error:
        _rollback()
        return StepResult(step, Outcome.FAILED, f"{type(error).__name__}: {error}")


def _guarded_admin(settings: Settings) -> tuple[StepResult, object | None]:
    step = f"admin '{settings.admin.username}'"
    try:
        return ensure_admin(settings)
    except Exception as error:  # reported as the step's failure
        _rollback()
        return StepResult(step, Outcome.FAILED, f"{type(error).__name__}: {error}"), None


def _rollback() -> None:
    from superset import db  # noqa: PLC0415

    db.session.rollback()
