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

A live worker does not prove the query's task will ever run: a worker host that dies while it waits
for work (kombu's `BRPOP`) can leave Redis a dead connection to hand the next message to; that message
is then neither in the queue nor in kombu's `unacked` hash, and nothing re-delivers it. So when
workers answer, the sweep also reads the broker: a stale `pending` query whose task is in neither place
on two sweeps at least MISSING_CONFIRM_SECONDS apart is failed with IN_TRANSIT_PREFIX... (the two
looks step over the moments a message is legitimately in neither: between the web's commit and its
publish, and between a worker's `BRPOP` and its `HSET unacked`).

Two more ways a query is left `running` forever, and what ends it (docs/reliability.md):

- The worker's child running it dies (SIGKILL, out of memory): the worker's main process reports
  Celery's `task_failure` with `WorkerLostError` (it does so in the main process, where the child's
  exit is seen; no task code runs), and `on_task_failure` fails the query at once with LOST_PREFIX...
- Nobody reports anything (worker host gone, worker frozen, task dropped): the same web sweep fails
  queries still `running` after their hard time limit plus `sql_lab.running_grace_seconds`
  (`running_timeout_seconds`), measured from when the worker set them running, with
  OVERDUE_PREFIX.... Celery would have killed a live task by then, so no ping is needed.

Installed by the rendered superset_config.py's FLASK_APP_MUTATOR (render.py). It writes nothing but
the query rows, starts no process and reaches only the broker and the metadata DB, as the web
already does; every failure is logged (without secrets) and retried at the next sweep.
"""

from __future__ import annotations

import base64
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

from .broker_queue import open_connection, unacknowledged_payloads, waiting_payloads
from .sql_lab_lanes import LANES_CONF_KEY, configured_lane_queues, lane_of_queue, lane_role, queue_has_consumer

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
# The task whose loss leaves a query `running` (Superset's sql_lab.get_sql_results(query_id, ...)).
SQL_LAB_TASK = "sql_lab.get_sql_results"
LOST_PREFIX = "The worker process running this query was lost"
IN_TRANSIT_PREFIX = "This query's task was lost on its way to a worker"
MISSING_CONFIRM_SECONDS = 8.0
OVERDUE_PREFIX = "This query was still running after its time limit"
CHECK_WORKER = (
    "check the Celery worker and its log: NixOS `systemctl status superset-async-worker` and "
    "`journalctl -u superset-async-worker`; local `superset-async status` and the worker's log in "
    "the state directory's logs/"
)


def failure_message(waited_seconds: float, lane: str | None = None) -> str:
    """The error a person sees in SQL Lab; `lane`: the query's SQL Lab lane, whose worker is missing."""
    if lane is None:
        return (
            f"{FAILURE_PREFIX} within {round(waited_seconds)} s: no Celery worker answered on the broker. "
            f"To fix it, {FIX} (after `superset-async down` if the rest of the stack still runs), "
            "then run the query again."
        )
    role = lane_role(lane)
    return (
        f"{FAILURE_PREFIX} within {round(waited_seconds)} s: the worker of its database's SQL Lab lane "
        f"'{lane}' did not answer on the broker. To fix it, start that worker: NixOS `systemctl start "
        f"superset-async-{role}`; local `superset-async start-role {role}` (or `superset-async up`), "
        "then run the query again."
    )


def bound_seconds(timeout_seconds: int) -> float:
    """The longest a query stays pending with no worker: timeout, one sweep interval and the ping."""
    return timeout_seconds + SWEEP_INTERVAL_SECONDS + PING_TIMEOUT_SECONDS


def lost_message(
    exception: BaseException,
    ran_seconds: float | None = None,
    soft_limit: int | None = None,
    hard_limit: int | None = None,
) -> str:
    """The error of a query whose worker child died under it (Celery's WorkerLostError).

    A child that dies after the query ran past its soft time limit was killed by Celery's hard
    time limit (it sends SIGTERM, and the loss is reported the same way): that gets its own fix.
    The hard limit cannot strike before `hard_limit` seconds (the soft limit plus its grace), and
    `ran_seconds` is measured when the loss is handled, seconds after the death on a loaded host:
    compare against the hard limit when it is known, so a child killed early is not blamed on it.
    """
    text = str(exception)
    found = re.search(r"signal (\d+) \((\w+)\)|exitcode (-?\d+)", text)
    if found and found.group(1):
        how = f"killed by signal {found.group(1)} ({found.group(2)})"
    elif found:
        how = f"exited with code {found.group(3)}"
    else:
        how = "it exited"
    threshold = hard_limit or soft_limit
    if ran_seconds is not None and soft_limit and threshold and ran_seconds >= threshold:
        return (
            f"{LOST_PREFIX} ({how}) after the query ran {round(ran_seconds)} s, past its time limit of "
            f"{soft_limit} s: Celery's hard time limit stopped it. Make the query faster (a LIMIT or a filter) "
            "or raise sql_lab.async_time_limit_seconds, then run it again."
        )
    return (
        f"{LOST_PREFIX} ({how}: e.g. out of memory, or the worker was stopped or restarted), so the "
        "query will never finish. Run the query again; if it happens again, the query probably needs more "
        f"memory than the worker has (add a LIMIT or a filter, or give the worker more memory): {CHECK_WORKER}."
    )


def in_transit_message(waited_seconds: float) -> str:
    """The error of a pending query whose task is neither queued nor taken by a worker."""
    return (
        f"{IN_TRANSIT_PREFIX}: it waited {round(waited_seconds)} s, and its task is neither in the broker's "
        "queue nor held by a Celery worker (a worker host went down while it was taking work from Redis), so "
        f"it will never run. Run the query again; if it happens again, {CHECK_WORKER}."
    )


def overdue_message(running_seconds: float, timeout_seconds: int) -> str:
    """The error of a query `running` past its hard time limit and grace, with no worker reporting its end."""
    return (
        f"{OVERDUE_PREFIX}: it ran {round(running_seconds)} s, and a Celery worker stops every query within "
        f"{timeout_seconds} s (sql_lab.async_time_limit_seconds, hard_time_limit_grace_seconds and "
        "running_grace_seconds), but no worker reported its end: the worker running it was lost (its host "
        "went down or was restarted, or the task was dropped). Run the query again; if it happens again, "
        f"{CHECK_WORKER}."
    )


@dataclass(frozen=True)
class StalePending:
    """A query row still `pending` (or `running`) after its timeout."""

    query_id: int
    age_seconds: float
    extra_json: str | None
    database_id: int | None = None


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

    def __init__(
        self,
        app: Flask,
        timeout_seconds: int,
        interval_seconds: float = SWEEP_INTERVAL_SECONDS,
        running_timeout_seconds: int | None = None,
    ) -> None:
        self.app = app
        self.timeout_seconds = timeout_seconds
        self.running_timeout_seconds = running_timeout_seconds
        self.interval_seconds = interval_seconds
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._celery: Any = None
        self._last_problem: str | None = None
        self._missing_since: dict[int, float] = {}  # query id -> when its task was first missed

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
        """One pass: the ids of the queries it failed (overdue `running` ones, then stale `pending` ones)."""
        with self.app.app_context():
            from superset.extensions import db  # noqa: PLC0415 - Superset is loaded by now
            from superset.models.sql_lab import Query  # noqa: PLC0415

            table = Query.__table__
            engine = db.engine
            overdue = self._fail_overdue(engine, table)
            return overdue + self._sweep_pending(engine, table)

    def _fail_overdue(self, engine: Any, table: Any) -> list[int]:
        if self.running_timeout_seconds is None:
            return []
        limit = self.running_timeout_seconds
        overdue = self._stale(engine, table, "running", limit)
        failed = _fail(
            engine,
            table,
            [(q.query_id, overdue_message(q.age_seconds, limit), q.extra_json) for q in overdue],
            ("running",),
        )
        if failed:
            log.warning(
                "SQL Lab watchdog: queries %s were still running after %s s with no worker reporting; failed them",
                ", ".join(map(str, failed)),
                limit,
            )
        return failed

    def _sweep_pending(self, engine: Any, table: Any) -> list[int]:
        stale = self._stale(engine, table, "pending", self.timeout_seconds)
        if not stale:
            self._last_problem = None
            return []
        workers = self.ping()
        if workers is None:
            return []  # broker unreachable: the queued tasks may still run when it returns
        self._last_problem = None
        # A query waits for the worker of its queue: its SQL Lab lane's (sql_lab.lanes), or the main one.
        queues = self._queues_of(engine, stale)
        unserved = [q for q in stale if not queue_has_consumer(queues[q.query_id], workers)]
        served = [q for q in stale if q not in unserved]
        failed = _fail(
            engine,
            table,
            [
                (q.query_id, failure_message(q.age_seconds, lane_of_queue(queues[q.query_id])), q.extra_json)
                for q in unserved
            ],
            ("pending",),
        )
        if failed:
            log.warning(
                "SQL Lab pending watchdog: no Celery worker of their queue answered a ping; failed queries %s "
                "(pending over %s s)",
                ", ".join(map(str, failed)),
                self.timeout_seconds,
            )
        if served:
            # Their worker is alive (busy or behind): leave them pending while their task waits.
            failed += self._fail_lost_in_transit(engine, table, served)
        return failed

    def _queues_of(self, engine: Any, stale: list[StalePending]) -> dict[int, str]:
        """query id -> the Celery queue its task was sent to (the router's rule: its database's lane)."""
        default = str(self._celery.conf.task_default_queue)
        lanes: dict[str, str] = self._celery.conf.get(LANES_CONF_KEY) or {}
        if not lanes:
            return {q.query_id: default for q in stale}
        from sqlalchemy import select  # noqa: PLC0415
        from superset.models.core import Database  # noqa: PLC0415 - Superset is loaded by now

        databases = Database.__table__
        ids = {q.database_id for q in stale if q.database_id is not None}
        with engine.connect() as connection:
            rows = connection.execute(select(databases.c.id, databases.c.database_name).where(databases.c.id.in_(ids)))
            names = {int(row[0]): str(row[1]) for row in rows}
        return {q.query_id: lanes.get(names.get(q.database_id or -1, ""), default) for q in stale}

    def _fail_lost_in_transit(self, engine: Any, table: Any, stale: list[StalePending]) -> list[int]:
        present = self.tasks_on_broker()
        if present is None:
            return []  # the broker could not be read: nothing is known missing
        now = time.monotonic()
        missing = {q.query_id for q in stale} - present
        self._missing_since = {i: self._missing_since.get(i, now) for i in missing}
        confirmed = [q for q in stale if now - self._missing_since.get(q.query_id, now) >= MISSING_CONFIRM_SECONDS]
        failed = _fail(
            engine,
            table,
            [(q.query_id, in_transit_message(q.age_seconds), q.extra_json) for q in confirmed],
            ("pending",),
        )
        for query_id in failed:
            self._missing_since.pop(query_id, None)
        if failed:
            log.warning(
                "SQL Lab pending watchdog: the tasks of queries %s are neither queued nor held by a worker "
                "(a worker host lost while taking them); failed them",
                ", ".join(map(str, failed)),
            )
        return failed

    def tasks_on_broker(self) -> set[int] | None:
        """Query ids of the SQL Lab tasks the broker holds, queued or delivered to a worker and not yet
        acknowledged (kombu's Redis transport: the queue's lists, one per priority, and its `unacked`
        hash); None when the broker cannot be read. With SQL Lab lanes, a query waits in its lane's
        queue: those are read too, or it would be failed as lost while its lane worker is busy."""
        try:
            if self._celery is None:
                self._celery = self._bare_celery()
            with open_connection(self._celery) as connection:
                channel = connection.default_channel
                queues = [self._celery.conf.task_default_queue, *configured_lane_queues(self._celery.conf)]
                waiting = [p for queue in queues for p in waiting_payloads(channel, queue)]
                payloads = waiting + unacknowledged_payloads(channel)
        except Exception as err:
            self._problem(f"cannot read the broker's queue ({type(err).__name__}: {_redact(str(err))})")
            self._celery = None
            return None
        return {i for i in map(sql_lab_query_id, payloads) if i is not None}

    @staticmethod
    def _stale(engine: Any, table: Any, status: str, timeout_seconds: int) -> list[StalePending]:
        from sqlalchemy import Float, func, select, type_coerce  # noqa: PLC0415

        # start_time is epoch milliseconds in a Numeric column; read and compare it as a float
        # (SQLite has no decimals, and SQLAlchemy warns at every Decimal conversion). A running
        # query counts from start_running_time, which the worker sets when it starts it.
        column = (
            table.c.start_time if status == "pending" else func.coalesce(table.c.start_running_time, table.c.start_time)
        )
        start_time = type_coerce(column, Float)
        now_ms = time.time() * 1000
        cutoff_ms = now_ms - timeout_seconds * 1000
        statement = select(table.c.id, start_time, table.c.extra_json, table.c.database_id).where(
            table.c.status == status, start_time < cutoff_ms
        )
        with engine.connect() as connection:
            rows: Sequence[Any] = connection.execute(statement).fetchall()
        return [StalePending(int(row[0]), (now_ms - float(row[1])) / 1000, row[2], row[3]) for row in rows]

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


def sql_lab_query_id(payload: str | bytes) -> int | None:
    """The query id of a SQL Lab task message as kombu stores it in Redis (Celery's protocol 2: a JSON
    envelope whose base64 body is [args, kwargs, embed]); None for any other message."""
    try:
        message = json.loads(payload)
        if message.get("headers", {}).get("task") != SQL_LAB_TASK:
            return None
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, kwargs, _embed = json.loads(body)
        return int(args[0] if args else kwargs["query_id"])
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None


def _fail(engine: Any, table: Any, queries: list[tuple[int, str, str | None]], statuses: tuple[str, ...]) -> list[int]:
    """Fail each (query id, message, extra_json) still in one of `statuses`; the ids it changed."""
    from sqlalchemy import Float, literal, update  # noqa: PLC0415

    failed: list[int] = []
    now = time.time()
    changed_on = datetime.now(UTC).replace(tzinfo=None)  # Superset stores naive UTC (datetime.utcnow)
    with engine.begin() as connection:
        for query_id, message, extra_json in queries:
            statement = (
                update(table)
                .where(table.c.id == query_id, table.c.status.in_(statuses))
                .values(
                    status="failed",
                    error_message=message,
                    end_time=literal(now * 1000, Float),
                    changed_on=changed_on,
                    extra_json=_with_error(extra_json, message),
                )
            )
            if connection.execute(statement).rowcount == 1:
                failed.append(query_id)
    return failed


class LostTaskHandler:
    """Celery's task_failure in the worker's main process: a SQL Lab task whose child died fails its query.

    Connected in every process that creates the app (FLASK_APP_MUTATOR), but only a worker's main
    process sends task_failure with WorkerLostError (Celery's Request.on_failure, unless acks_late
    with reject_on_worker_lost re-queued the task, which then sends nothing). It writes through an
    engine of its own without a pool, so that no connection outlives the call into the children the
    main process forks next.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app

    def __call__(
        self,
        sender: Any = None,
        task_id: str | None = None,
        exception: BaseException | None = None,
        args: Any = None,
        kwargs: Any = None,
        **_: Any,
    ) -> None:
        if getattr(sender, "name", None) != SQL_LAB_TASK or exception is None:
            return
        from celery.exceptions import WorkerLostError  # noqa: PLC0415 - billiard's, re-exported

        if not isinstance(exception, WorkerLostError):
            return  # anything else happened inside the task, whose code handles it (handle_query_error)
        query_id = args[0] if args else (kwargs or {}).get("query_id")
        # the rendered task annotation's limits
        soft, hard = getattr(sender, "soft_time_limit", None), getattr(sender, "time_limit", None)
        limits = (soft if isinstance(soft, int) else None, hard if isinstance(hard, int) else None)
        try:
            failed = self.fail(int(str(query_id)), exception, limits)
        except Exception as err:  # never break the worker's main process: the web's sweep is the backstop
            log.error(
                "SQL Lab lost-task handler: cannot fail query %s of task %s: %s: %s",
                query_id,
                task_id,
                type(err).__name__,
                _redact(str(err)),
            )
            return
        log.warning(
            "SQL Lab lost-task handler: task %s lost its worker process (%s); query %s %s",
            task_id,
            _redact(str(exception)),
            query_id,
            "failed" if failed else "had already ended",
        )

    def fail(self, query_id: int, exception: BaseException, limits: tuple[int | None, int | None]) -> bool:
        """Fail the query with lost_message if it is still running or pending; whether it did."""
        from sqlalchemy import Float, create_engine, select, type_coerce  # noqa: PLC0415
        from sqlalchemy.pool import NullPool  # noqa: PLC0415

        with self.app.app_context():
            from superset.models.sql_lab import Query  # noqa: PLC0415 - Superset is loaded by now

            table = Query.__table__
            options = self.app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}
            engine = create_engine(
                self.app.config["SQLALCHEMY_DATABASE_URI"],
                poolclass=NullPool,
                connect_args=dict(options.get("connect_args") or {}),
            )
            try:
                started = type_coerce(table.c.start_running_time, Float)
                with engine.connect() as connection:
                    statement = select(table.c.extra_json, started).where(table.c.id == query_id)
                    row = connection.execute(statement).first()
                if row is None:
                    return False
                ran = time.time() - float(row[1]) / 1000 if row[1] is not None else None
                message = lost_message(exception, ran, *limits)
                return bool(_fail(engine, table, [(query_id, message, row[0])], ("running", "pending")))
            finally:
                engine.dispose()


def install(
    app: Flask,
    timeout_seconds: int,
    interval_seconds: float = SWEEP_INTERVAL_SECONDS,
    running_timeout_seconds: int | None = None,
) -> PendingWatchdog:
    """Attach the watchdog: its thread starts with the first request a process serves.

    Only web processes serve requests, so the Celery worker, beat and CLI commands, which create
    the same app (and so run FLASK_APP_MUTATOR), never start it. The lost-task handler is connected
    to Celery's task_failure in every process; only a worker's main process ever sends it.
    `running_timeout_seconds` (hard time limit plus grace) turns on the sweep of overdue `running`
    queries; None leaves them alone.
    """
    from celery.signals import task_failure  # noqa: PLC0415

    watchdog = PendingWatchdog(app, timeout_seconds, interval_seconds, running_timeout_seconds)
    app.before_request(watchdog.ensure_running)
    app.extensions["superset_async_pending_watchdog"] = watchdog
    handler = LostTaskHandler(app)
    task_failure.connect(handler, weak=False, dispatch_uid="superset-async-lost-task")
    app.extensions["superset_async_lost_task_handler"] = handler
    return watchdog
