"""SQL Lab's pending watchdog: an async query no Celery worker picks up ends `failed`, not pending forever.

Superset 6.1 answers an async query with 202 once the task is on the broker; with no worker consuming
it the query row stays `pending` and SQL Lab shows a spinner forever (docs/troubleshooting.md). In
each web process that has served a request, a daemon thread sweeps every SWEEP_INTERVAL_SECONDS:
when queries have been `pending` longer than `sql_lab.pending_timeout_seconds`, it pings the
workers on the broker (Celery's control API, PING_TIMEOUT_SECONDS); if none answers, it fails those
queries with FAILURE_PREFIX..., the wait and the fix. A worker that answers (busy, queue backed up)
leaves them pending. The UPDATE is conditional on the row still being `pending`, so several web
processes never fight, and a worker that took the query meanwhile wins.

What SQL Lab's UI reads (Superset 6.1's frontend): it polls /api/v1/query/updated_since, which
returns rows whose `changed_on` is newer than its last poll, and for a failed query shows the errors
in `extra.errors` (not `error_message` alone); so all three are set.

Installed by the rendered superset_config.py's FLASK_APP_MUTATOR (render.py). It writes nothing but
the query rows, starts no process and reaches only the broker and the metadata DB, as the web
already does; every failure is logged (without secrets) and retried at the next sweep.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 5.0
PING_TIMEOUT_SECONDS = 1.0
# A person (and the browser tests) recognise the failure by this prefix: keep it stable.
FAILURE_PREFIX = "No Celery worker picked up this query"
FIX = "start the Celery worker: NixOS `systemctl start superset-async-worker`; local `superset-async up`"
# Superset's error type for "the async workers did not run it"; no issue code, because upstream's
# 1035 ("Failed to start remote query on a worker.") means the broker refused the task.
ERROR_TYPE = "ASYNC_WORKERS_ERROR"


def failure_message(waited_seconds: float) -> str:
    """The error a person sees in SQL Lab."""
    return (
        f"{FAILURE_PREFIX} within {round(waited_seconds)} s: no Celery worker answered on the broker. "
        f"To fix it, {FIX} (after `superset-async down` if the rest of the stack still runs), "
        "then run the query again."
    )


def bound_seconds(timeout_seconds: int) -> float:
    """The longest a query stays pending with no worker: timeout, one sweep interval and the ping."""
    return timeout_seconds + SWEEP_INTERVAL_SECONDS + PING_TIMEOUT_SECONDS


@dataclass(frozen=True)
class StalePending:
    """A query row still `pending` after the timeout."""

    query_id: int
    age_seconds: float
    extra_json: str | None


def _redact(text: str) -> str:
    # Connection errors may quote a URL; never log its credentials.
    return re.sub(r"//[^/@\s]*@", "//***@", text)


def _with_error(extra_json: str | None, message: str) -> str:
    try:
        extra = json.loads(extra_json) if extra_json else {}
    except ValueError:
        extra = {}
    if not isinstance(extra, dict):
        extra = {}
    extra["errors"] = [{"message": message, "error_type": ERROR_TYPE, "level": "error", "extra": {"issue_codes": []}}]
    return json.dumps(extra)


class PendingWatchdog:
    """The sweep of one web process; `ensure_running` starts its thread once per process."""

    def __init__(self, app: Flask, timeout_seconds: int, interval_seconds: float = SWEEP_INTERVAL_SECONDS) -> None:
        self.app = app
        self.timeout_seconds = timeout_seconds
        self.interval_seconds = interval_seconds
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._celery: Any = None
        self._last_problem: str | None = None

    def ensure_running(self) -> None:
        """Start the sweep thread in this process, unless it runs already (a fork gets its own)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._celery = None  # a forked copy must not share the parent's broker connections
            thread = threading.Thread(target=self._loop, name="superset-async-pending-watchdog", daemon=True)
            thread.start()
            log.info(
                "SQL Lab pending watchdog: queries pending over %s s with no Celery worker will fail",
                self.timeout_seconds,
            )

    def _loop(self) -> None:
        while True:
            time.sleep(self.interval_seconds)
            try:
                self.sweep()
            except Exception as err:  # never let the thread die: the next sweep tries again
                self._problem(f"sweep failed: {type(err).__name__}: {_redact(str(err))}")

    def _problem(self, text: str) -> None:
        # Logged once per distinct problem, so a long outage does not flood the web log.
        if text != self._last_problem:
            log.warning("SQL Lab pending watchdog: %s", text)
            self._last_problem = text

    def sweep(self) -> list[int]:
        """One pass: the ids of the queries it failed."""
        with self.app.app_context():
            from superset.extensions import db  # noqa: PLC0415 - Superset is loaded by now
            from superset.models.sql_lab import Query  # noqa: PLC0415

            table = Query.__table__
            engine = db.engine
            stale = self._stale(engine, table)
            if not stale:
                self._last_problem = None
                return []
            workers = self.ping()
            if workers is None:
                return []  # broker unreachable: the queued tasks may still run when it returns
            self._last_problem = None
            if workers:
                return []  # a worker is alive (busy or behind): leave the queries pending
            failed = self._fail(engine, table, stale)
        if failed:
            log.warning(
                "SQL Lab pending watchdog: no Celery worker answered a ping; failed queries %s (pending over %s s)",
                ", ".join(map(str, failed)),
                self.timeout_seconds,
            )
        return failed

    def _stale(self, engine: Any, table: Any) -> list[StalePending]:
        from sqlalchemy import Float, select, type_coerce  # noqa: PLC0415

        # start_time is epoch milliseconds in a Numeric column; read and compare it as a float
        # (SQLite has no decimals, and SQLAlchemy warns at every Decimal conversion).
        start_time = type_coerce(table.c.start_time, Float)
        now_ms = time.time() * 1000
        cutoff_ms = now_ms - self.timeout_seconds * 1000
        statement = select(table.c.id, start_time, table.c.extra_json).where(
            table.c.status == "pending", start_time < cutoff_ms
        )
        with engine.connect() as connection:
            rows: Sequence[Any] = connection.execute(statement).fetchall()
        return [StalePending(int(row[0]), (now_ms - float(row[1])) / 1000, row[2]) for row in rows]

    def _fail(self, engine: Any, table: Any, stale: list[StalePending]) -> list[int]:
        from sqlalchemy import Float, literal, update  # noqa: PLC0415

        failed: list[int] = []
        now = time.time()
        changed_on = datetime.now(UTC).replace(tzinfo=None)  # Superset stores naive UTC (datetime.utcnow)
        with engine.begin() as connection:
            for query in stale:
                message = failure_message(query.age_seconds)
                statement = (
                    update(table)
                    .where(table.c.id == query.query_id, table.c.status == "pending")
                    .values(
                        status="failed",
                        error_message=message,
                        end_time=literal(now * 1000, Float),
                        changed_on=changed_on,
                        extra_json=_with_error(query.extra_json, message),
                    )
                )
                if connection.execute(statement).rowcount == 1:
                    failed.append(query.query_id)
        return failed

    def ping(self) -> list[str] | None:
        """Names of the Celery workers that answer on the broker; None when the broker cannot be reached."""
        try:
            if self._celery is None:
                self._celery = self._bare_celery()
            replies = self._celery.control.ping(timeout=PING_TIMEOUT_SECONDS) or []
        except Exception as err:
            self._problem(
                f"cannot reach the Celery broker to ping the workers ({type(err).__name__}: {_redact(str(err))}); "
                "pending queries are left as they are"
            )
            self._celery = None
            return None
        return sorted(name for reply in replies for name in reply)

    def _bare_celery(self) -> Any:
        # Configured from the app's CELERY_CONFIG, as Superset's own celery_app is, with short
        # connection timeouts so that a sweep never hangs (as verify's bare app, verify/celery_app.py).
        from celery import Celery  # noqa: PLC0415

        celery = Celery("superset-async-pending-watchdog", set_as_current=False)
        celery.config_from_object(self.app.config["CELERY_CONFIG"])
        celery.conf.update(
            broker_connection_timeout=PING_TIMEOUT_SECONDS + 1,
            broker_connection_retry=False,
            broker_connection_max_retries=1,
            redis_socket_connect_timeout=PING_TIMEOUT_SECONDS + 1,
            redis_socket_timeout=PING_TIMEOUT_SECONDS + 4,
        )
        return celery


def install(app: Flask, timeout_seconds: int, interval_seconds: float = SWEEP_INTERVAL_SECONDS) -> PendingWatchdog:
    """Attach the watchdog: its thread starts with the first request a process serves.

    Only web processes serve requests, so the Celery worker, beat and CLI commands, which create
    the same app (and so run FLASK_APP_MUTATOR), never start it.
    """
    watchdog = PendingWatchdog(app, timeout_seconds, interval_seconds)
    app.before_request(watchdog.ensure_running)
    app.extensions["superset_async_pending_watchdog"] = watchdog
    return watchdog
