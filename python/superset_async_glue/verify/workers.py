"""Gather for checks 4 and 8 (and 9's pending queries): the workers, asked through Celery's own control
API on the stack's broker.

A bare Celery app answers in well under a second where `celery inspect ping` through Superset's app
takes about 6 s (field notes). One broadcast ping finds the workers; the other inspections are
addressed to them with a reply limit, so they return as soon as every worker answered.
"""

from __future__ import annotations

import re
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from .. import procfs
from ..sql_lab_lanes import LANES_CONF_KEY, lane_queues_of
from .celery_app import bare_app, connection_identity, sqllab_queue
from .facts import SQLLAB_TASK, UNKNOWN_DB, Identity, Ping, RoundTripFacts, Worker, WorkerSurvey
from .judge import PING_TIMEOUT
from .redis_io import redis_client
from .target import LoadedConfig, RedisEndpoint, Target, same_file

_INFO = re.compile(r"(\w+)=([^\s\]]+)")


def redis_identity(url: str | None) -> Identity | None:
    if not url:
        return None
    from kombu.utils.url import url_to_parts  # noqa: PLC0415

    # Sentinel: one URL per Sentinel joined by ";" (render.py); the first Sentinel and the DB identify it.
    url = url.split(";", 1)[0] if url.startswith("sentinel://") else url
    parts = url_to_parts(url)
    if parts.scheme.endswith("socket") or parts.scheme == "unix":
        # kombu's parts drop the path's leading "/"; the URL's own path keeps it.
        split = urlsplit(url)
        match = re.search(r"(?:virtual_host|db)=(\d+)", split.query)
        return f"unix:{split.path}", int(match.group(1)) if match else UNKNOWN_DB
    host = parts.hostname or "localhost"
    host = "127.0.0.1" if host == "localhost" else host
    vhost = (parts.path or "0").strip("/") or "0"
    return f"{host}:{parts.port or 6379}", int(vhost) if vhost.isdigit() else 0


def _stats_identity(broker: dict[str, Any]) -> Identity:
    hostname = str(broker.get("hostname") or "")
    if "://" in hostname:  # a socket transport: kombu reports the whole URL as the hostname
        found = redis_identity(hostname)
        if found is not None:
            return found
    kwargs = {
        "host": broker.get("hostname"),
        "port": broker.get("port") or 6379,
        "db": int(str(broker.get("virtual_host") or "0").strip("/") or 0),
    }
    if broker.get("transport") in ("redis+socket", "socket"):
        kwargs["path"] = broker.get("hostname")
    return connection_identity(kwargs)


def _local_config(name: str, pid: int | None) -> str | None:
    if pid is None or name.split("@", 1)[-1] != socket.gethostname() or not procfs.is_alive(pid):
        return None
    return (procfs.environ(pid) or {}).get("SUPERSET_CONFIG_PATH")


def survey_workers(target: Target, broker_ping: Ping | None) -> WorkerSurvey:
    """Ping the broker's workers and ask each for its queues, tasks, pool, broker and result backend."""
    view = target.config
    started = time.monotonic()
    web_config = target.options.config_path
    if view.error is not None:
        return WorkerSurvey((), "", ("?", -1), 0.0, config_error=view.error, web_config=str(web_config))
    queue = sqllab_queue(view)
    ours = redis_identity(view.broker_url) or ("?", -1)
    if broker_ping is not None and not broker_ping.ok:
        return WorkerSurvey((), queue, ours, time.monotonic() - started, f"broker unreachable: {broker_ping.error}")
    app = bare_app(view)
    try:
        replies = (
            app.control.ping(timeout=PING_TIMEOUT, limit=_bound_workers(view, app.control.mailbox.namespace)) or []
        )
        names = sorted(name for reply in replies for name in reply)
        if not names:
            listeners, other = _other_broker_dbs(view, ours)
            return WorkerSurvey((), queue, ours, time.monotonic() - started, None, other, listeners)
        inspect = app.control.inspect(destination=names, limit=len(names), timeout=PING_TIMEOUT)
        registered = inspect.registered("soft_time_limit", "time_limit") or {}
        queues = inspect.active_queues() or {}
        stats = inspect.stats() or {}
        confs = inspect.conf() or {}
    except Exception as err:
        return WorkerSurvey((), queue, ours, time.monotonic() - started, f"{type(err).__name__}: {err}")
    finally:
        app.close()
    workers = []
    for name in names:
        info = next((t for t in registered.get(name, []) if t.split(" ", 1)[0] == SQLLAB_TASK), None)
        limits = dict(_INFO.findall(info)) if info else {}
        stat = stats.get(name, {})
        pid = stat.get("pid")
        config = _local_config(name, pid)
        workers.append(
            Worker(
                name=name,
                queues=tuple(q["name"] for q in queues.get(name, [])),
                sqllab_registered=info is not None,
                soft_time_limit=int(float(limits["soft_time_limit"])) if "soft_time_limit" in limits else None,
                time_limit=int(float(limits["time_limit"])) if "time_limit" in limits else None,
                pool=str(stat.get("pool", {}).get("implementation", "")),
                pid=pid,
                broker=_stats_identity(stat["broker"]) if "broker" in stat else None,
                result_backend=redis_identity(confs.get(name, {}).get("result_backend")),
                config_path=config,
                runs_web_config=None if config is None else same_file(config, web_config),
            )
        )
    lanes = tuple(lane_queues_of(view.celery_get(LANES_CONF_KEY)))
    return WorkerSurvey(
        tuple(workers), queue, ours, time.monotonic() - started, web_config=str(web_config), lane_queues=lanes
    )


def _bound_workers(view: LoadedConfig, namespace: str) -> int | None:
    """How many workers can answer a broadcast at most: each binds its pidbox queue to the control exchange
    (kombu keeps the bindings in a Redis set; a worker that crashed leaves its entry behind, so this is an
    upper bound). With it as the reply limit, a ping returns when every live worker answered instead of
    always waiting its whole timeout; None (no limit) when the set cannot be read."""
    from kombu.transport.redis import Channel  # noqa: PLC0415 - kombu's key for an exchange's bindings

    try:
        with redis_client(RedisEndpoint("broker", "broker", "kombu", view.broker_url), view) as client:
            return int(client.scard(Channel.keyprefix_queue % f"{namespace}.pidbox")) or None
    except Exception:
        return None


def _other_broker_dbs(view: LoadedConfig, ours: Identity) -> tuple[dict[int, int], dict[int, list[str]]]:
    """No worker answered on our DB: which DBs of the broker's server have Celery broadcast listeners?

    Workers PSUBSCRIBE to their broker DB's broadcast channels (kombu prefixes them with the DB), so
    CLIENT LIST shows, per DB, the connections that listen; a bare app on such a DB then names them.
    """
    listeners: dict[int, int] = {}
    try:
        with redis_client(RedisEndpoint("broker", "broker", "kombu", view.broker_url), view) as client:
            for entry in client.client_list():
                if int(entry.get("psub", 0) or 0) > 0:
                    db = int(entry.get("db", 0))
                    listeners[db] = listeners.get(db, 0) + 1
    except Exception:
        return {}, {}  # CLIENT may be forbidden by an ACL: nothing more to learn
    other: dict[int, list[str]] = {}
    for db in sorted(d for d in listeners if d != ours[1]):
        url = _with_db(view.broker_url, db)
        app = bare_app(view)
        app.conf.broker_url = url
        try:
            replies = app.control.ping(timeout=PING_TIMEOUT / 2) or []
        except Exception:
            replies = []
        finally:
            app.close()
        other[db] = sorted(name for reply in replies for name in reply)
    return listeners, other


def _with_db(url: str, db: int) -> str:
    if "virtual_host=" in url:
        return re.sub(r"virtual_host=\d+", f"virtual_host={db}", url)
    return re.sub(r"/\d*(\?|$)", f"/{db}\\1", url, count=1) if re.search(r"//[^/]*/\d*(\?|$)", url) else url


def round_trip(target: Target, survey: WorkerSurvey) -> RoundTripFacts:
    """Check 8's facts: Celery's built-in celery.accumulate sent to SQL Lab's queue, and its answer."""
    view = target.config
    ours = redis_identity(view.result_backend)
    if not survey.workers or view.result_backend is None:
        return RoundTripFacts(survey, ours, view.result_backend is not None)
    app = bare_app(view)
    nonce = uuid.uuid4().hex
    started = time.monotonic()
    try:
        # celery.accumulate is one of Celery's built-in tasks: every worker has it, it returns its arguments.
        result = app.send_task("celery.accumulate", args=(nonce,), queue=survey.queue, expires=30)
        value = result.get(timeout=5, propagate=False)
        seconds = time.monotonic() - started
        result.forget()
    except Exception as err:
        value, seconds = f"{type(err).__name__}: {err}", time.monotonic() - started
    finally:
        app.close()
    came_back = value in ([nonce], (nonce,))
    return RoundTripFacts(survey, ours, True, came_back, "" if came_back else str(value), seconds)


def sqllab_tasks(target: Target, names: list[str], query_id: int) -> dict[str, str]:
    """Task ids of sql_lab.get_sql_results for `query_id` that the workers hold (task id -> state there)."""
    app = bare_app(target.config)
    found: dict[str, str] = {}
    try:
        inspect = app.control.inspect(destination=names, limit=len(names), timeout=PING_TIMEOUT)
        for state, replies in (("active", inspect.active()), ("reserved", inspect.reserved())):
            for tasks in (replies or {}).values():
                for task in tasks:
                    args = task.get("args") or []
                    first = args[0] if isinstance(args, list | tuple) and args else None
                    if task.get("name") == SQLLAB_TASK and (first == query_id or str(first) == str(query_id)):
                        found[str(task["id"])] = state
    except Exception:
        return found
    finally:
        app.close()
    return found


def task_outcome(target: Target, task_id: str) -> tuple[str, str]:
    """A task's state in the result backend and, when it failed, the error it raised."""
    app = bare_app(target.config)
    try:
        result = app.AsyncResult(task_id)
        state = str(result.state)
        error = str(result.result) if state == "FAILURE" else ""
        return state, error
    except Exception as err:
        return "UNKNOWN", f"{type(err).__name__}: {err}"
    finally:
        app.close()
