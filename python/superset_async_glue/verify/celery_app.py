"""A bare Celery app on the stack's broker: Celery's own control API without importing Superset.

Configured from the rendered CeleryConfig itself (as Superset's celery_app is), so routing, SSL and
transport options are the stack's; only connection timeouts are ours, so that verify never hangs.
"""

from __future__ import annotations

from typing import Any

from .facts import SQLLAB_TASK
from .target import LoadedConfig

TIMEOUT = 2.0


def bare_app(view: LoadedConfig) -> Any:
    from celery import Celery  # noqa: PLC0415 - imported when a check runs

    app = Celery("superset-async-verify", set_as_current=False)
    app.config_from_object(view.celery)
    options = {k: v for k, v in view.broker_options.items() if v}
    app.conf.update(
        **options,
        broker_connection_timeout=TIMEOUT,
        broker_connection_retry=False,
        broker_connection_max_retries=1,
        redis_socket_connect_timeout=TIMEOUT,
        redis_socket_timeout=TIMEOUT + 3,
        result_expires=300,
    )
    return app


def sqllab_queue(view: LoadedConfig) -> str:
    """The queue `sql_lab.get_sql_results.delay()` publishes to, as Celery routes it with this config."""
    app = bare_app(view)
    try:
        route = app.amqp.router.route({}, SQLLAB_TASK)
        return str(route["queue"].name)
    except Exception:  # a route Celery cannot resolve here: Celery's default queue
        return str(app.conf.task_default_queue or "celery")
    finally:
        app.close()


def connection_identity(kwargs: dict[str, Any]) -> tuple[str, int]:
    """(server, db) of a redis-py connection: the unix socket path or host:port, and the DB number."""
    if kwargs.get("path"):
        server = f"unix:{kwargs['path']}"
    else:
        host = str(kwargs.get("host", "localhost"))
        host = "127.0.0.1" if host in ("localhost", "::ffff:127.0.0.1") else host
        server = f"{host}:{kwargs.get('port', 6379)}"
    return server, int(kwargs.get("db", 0) or 0)
