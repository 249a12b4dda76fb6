"""Declared databases, upserted through Superset's own command layer (as the REST API does)."""

from __future__ import annotations

import json
from contextlib import closing
from typing import Any

from ..secret_io import read_secret
from ..settings import Database, database_credential
from .result import Outcome, StepResult

# Compared with the stored row to tell "unchanged" from "updated"; keep in step with _properties.
_FLAGS = ("allow_run_async", "expose_in_sqllab", "allow_dml")


def _uri_with_password(declared: Database, password: str | None) -> str:
    from sqlalchemy.engine.url import make_url  # noqa: PLC0415

    url = make_url(declared.uri)
    if password is not None:
        url = url.set(password=password)
    rendered: str = url.render_as_string(hide_password=False)
    return rendered


def _properties(declared: Database, uri: str) -> dict[str, Any]:
    return {
        "database_name": declared.name,
        "sqlalchemy_uri": uri,
        "allow_run_async": declared.allow_run_async,
        "expose_in_sqllab": declared.expose_in_sqllab,
        "allow_dml": declared.allow_dml,
        "extra": json.dumps(declared.extra, sort_keys=True),
    }


def driver_message(error: BaseException) -> str:
    """The database driver's own message, unwrapped from SQLAlchemy's and Superset's exceptions.

    The outermost exception raised by neither SQLAlchemy nor Superset is the driver's; its root
    cause (e.g. ConnectionRefusedError) is appended when it adds something.
    """
    chain: list[BaseException] = [error]
    while len(chain) < 20:
        inner = getattr(chain[-1], "orig", None) or chain[-1].__cause__ or chain[-1].__context__
        if not isinstance(inner, BaseException) or inner in chain:
            break
        chain.append(inner)
    ours = ("sqlalchemy", "superset")
    driver = next((e for e in chain if not type(e).__module__.startswith(ours)), chain[-1])
    text = f"{type(driver).__name__}: {driver}".strip()
    root = chain[-1]
    if root is not driver and str(root) not in text:
        text += f" (cause: {type(root).__name__}: {root})"
    return text


def probe(properties: dict[str, Any], timeout_seconds: int) -> str | None:
    """Connect with Superset's engine for this URI; None when it answers, else the driver's message."""
    from superset.daos.database import DatabaseDAO  # noqa: PLC0415
    from superset.utils.core import timeout  # noqa: PLC0415

    database = DatabaseDAO.build_db_for_connection_test(
        server_cert="", extra=properties["extra"], impersonate_user=False, encrypted_extra="{}"
    )
    database.set_sqlalchemy_uri(properties["sqlalchemy_uri"])
    try:
        with timeout(timeout_seconds), database.get_sqla_engine() as engine, closing(engine.raw_connection()) as conn:
            if engine.dialect.do_ping(conn) is False:
                return "the driver connected but its ping failed"
    except Exception as error:
        return driver_message(error)
    return None


def _differences(existing: Any, wanted: dict[str, Any]) -> list[str]:
    from sqlalchemy.engine.url import make_url  # noqa: PLC0415

    changed = []
    if make_url(existing.sqlalchemy_uri_decrypted) != make_url(wanted["sqlalchemy_uri"]):
        changed.append("sqlalchemy_uri")
    changed += [flag for flag in _FLAGS if bool(getattr(existing, flag)) != wanted[flag]]
    try:
        stored_extra = json.loads(existing.extra or "{}")
    except ValueError:
        stored_extra = None
    if stored_extra != json.loads(wanted["extra"]):
        changed.append("extra")
    return changed


def upsert_database(declared: Database, timeout_seconds: int = 30) -> StepResult:
    """Create or update one declared database; an unreachable one fails with the driver's message."""
    from superset.commands.database.create import CreateDatabaseCommand  # noqa: PLC0415
    from superset.commands.database.update import UpdateDatabaseCommand  # noqa: PLC0415
    from superset.daos.database import DatabaseDAO  # noqa: PLC0415

    step = f"database '{declared.name}'"
    password = None
    if declared.password_file:
        password = read_secret(
            f"databases '{declared.name}' password_file", declared.password_file, database_credential(declared)
        )
    wanted = _properties(declared, _uri_with_password(declared, password))
    problem = probe(wanted, timeout_seconds)
    if problem is not None:
        if password:
            problem = problem.replace(password, "***")
        return StepResult(step, Outcome.FAILED, f"cannot connect to {declared.uri}: {problem}")
    existing = DatabaseDAO.get_database_by_name(declared.name)
    if existing is None:
        CreateDatabaseCommand(wanted).run()
        return StepResult(step, Outcome.CREATED, _flags_text(declared))
    changed = _differences(existing, wanted)
    if not changed:
        return StepResult(step, Outcome.UNCHANGED, _flags_text(declared))
    UpdateDatabaseCommand(existing.id, {k: wanted[k] for k in changed}).run()
    return StepResult(step, Outcome.UPDATED, "changed: " + ", ".join(changed))


def _flags_text(declared: Database) -> str:
    return ", ".join(f"{flag}={'on' if getattr(declared, flag) else 'off'}" for flag in _FLAGS)
