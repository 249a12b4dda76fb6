"""Checks 4 and 8: the workers, asked through Celery's own control API on the stack's broker.

A bare Celery app answers in well under a second where `celery inspect ping` through Superset's app
takes about 6 s (field notes). One broadcast ping finds the workers; the other inspections are
addressed to them with a reply limit, so they return as soon as every worker answered.
"""

from __future__ import annotations

import re
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..runner import procfs
from . import diagnosis as dx
from .celery_app import bare_app, connection_identity, sqllab_queue
from .model import Outcome, failed, passed, skipped, warned
from .redis_checks import Ping, redis_client
from .target import SQLLAB_TASK, ConfigView, RedisEndpoint, Target, same_file

PING_TIMEOUT = 1.0
UPSTREAM_SOFT_LIMIT = 21600  # sql_lab.get_sql_results' hard-coded soft_time_limit in Superset 6.1.0
_INFO = re.compile(r"(\w+)=([^\s\]]+)")


@dataclass(frozen=True)
class Worker:
    """What one worker said about itself."""

    name: str
    queues: tuple[str, ...] = ()
    sqllab_registered: bool = False
    soft_time_limit: int | None = None
    time_limit: int | None = None
    pool: str = ""
    pid: int | None = None
    broker: tuple[str, int] | None = None  # (server, db) from its stats
    result_backend: tuple[str, int] | None = None  # from its conf
    config_path: str | None = None  # SUPERSET_CONFIG_PATH, when the worker runs on this host


@dataclass(frozen=True)
class WorkerSurvey:
    """Every worker that answered on the broker, and what verify found when none did."""

    workers: tuple[Worker, ...]
    queue: str  # the queue SQL Lab publishes to
    broker: tuple[str, int]
    seconds: float
    error: str | None = None
    other_dbs: dict[int, list[str]] = field(default_factory=dict)  # broker DB -> workers answering there
    listeners: dict[int, int] = field(default_factory=dict)  # DB -> Redis clients subscribed to broadcasts

    @property
    def names(self) -> list[str]:
        return [w.name for w in self.workers]


UNKNOWN_DB = -1  # a worker's `inspect conf` drops a socket URL's query, and with it the DB


def _redis_identity(url: str | None) -> tuple[str, int] | None:
    if not url:
        return None
    from kombu.utils.url import url_to_parts  # noqa: PLC0415

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


def same_redis(a: tuple[str, int] | None, b: tuple[str, int] | None) -> bool:
    """Same server and DB; a DB a worker does not report (UNKNOWN_DB) matches any."""
    if a is None or b is None:
        return a is b
    return a == b or (a[0] == b[0] and UNKNOWN_DB in (a[1], b[1]))


def _stats_identity(broker: dict[str, Any]) -> tuple[str, int]:
    hostname = str(broker.get("hostname") or "")
    if "://" in hostname:  # a socket transport: kombu reports the whole URL as the hostname
        found = _redis_identity(hostname)
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
    queue = sqllab_queue(view)
    ours = _redis_identity(view.broker_url) or ("?", -1)
    if broker_ping is not None and not broker_ping.ok:
        return WorkerSurvey((), queue, ours, time.monotonic() - started, f"broker unreachable: {broker_ping.error}")
    app = bare_app(view)
    try:
        replies = app.control.ping(timeout=PING_TIMEOUT) or []
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
                result_backend=_redis_identity(confs.get(name, {}).get("result_backend")),
                config_path=_local_config(name, pid),
            )
        )
    return WorkerSurvey(tuple(workers), queue, ours, time.monotonic() - started)


def _other_broker_dbs(view: ConfigView, ours: tuple[str, int]) -> tuple[dict[int, int], dict[int, list[str]]]:
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


def check_workers(target: Target, survey: WorkerSurvey, web_config: str | None) -> Outcome:
    """Check 4: workers answer, register sql_lab.get_sql_results, consume SQL Lab's queue, share the broker."""
    details: dict[str, Any] = {
        "queue": survey.queue,
        "broker": f"{survey.broker[0]}/{survey.broker[1]}",
        "workers": {
            w.name: {
                "queues": list(w.queues),
                "sqllab_task": w.sqllab_registered,
                "soft_time_limit": w.soft_time_limit,
                "pool": w.pool,
                "pid": w.pid,
                "broker": "/".join(map(str, w.broker)) if w.broker else None,
                "config": w.config_path,
            }
            for w in survey.workers
        },
    }
    if survey.error:
        return failed(
            f"cannot ask the workers: {survey.error}",
            "make the broker reachable first (checks 2 and 7)",
            (dx.BROKER_UNREACHABLE,),
            **details,
        )
    if not survey.workers:
        details["listeners_per_db"] = survey.listeners
        details["workers_on_other_dbs"] = survey.other_dbs
        elsewhere = {db: names for db, names in survey.other_dbs.items() if names} or {
            db: [] for db in survey.listeners if db != survey.broker[1]
        }
        if elsewhere:
            where = "; ".join(f"DB {db}: {', '.join(n) or 'listening clients'}" for db, n in elsewhere.items())
            modes: tuple[str, ...] = (dx.WORKER_OTHER_DB,)
            if survey.listeners.get(survey.broker[1]):
                modes += (dx.NO_WORKER,)
            return failed(
                f"no worker answers on broker DB {survey.broker[1]}, but workers listen on another DB "
                f"of the same Redis ({where})",
                f"start the worker with the web's config (broker DB {survey.broker[1]}) and restart it",
                modes,
                **details,
            )
        hung = survey.listeners.get(survey.broker[1], 0)
        extra = f" ({hung} Redis connection(s) still subscribed there: a stopped or hung worker?)" if hung else ""
        return failed(
            f"no worker answered a ping within {PING_TIMEOUT:.0f}s on broker DB {survey.broker[1]}{extra}; "
            "async queries would stay pending",
            "start or restart the worker (NixOS: systemctl restart superset-async-worker; local: "
            "superset-async status, then up)",
            (dx.NO_WORKER,),
            **details,
        )
    problems: list[tuple[str, str]] = []
    for w in survey.workers:
        if not w.sqllab_registered:
            problems.append(
                (f"{w.name} has no {SQLLAB_TASK} (celery.imports lacks superset.sql_lab?)", dx.QUEUE_NOT_CONSUMED)
            )
        if w.broker and not same_redis(w.broker, survey.broker):
            problems.append(
                (
                    f"{w.name} uses broker {w.broker[0]}/{w.broker[1]}, the web {survey.broker[0]}/{survey.broker[1]}",
                    dx.WORKER_OTHER_DB,
                )
            )
    if not any(survey.queue in w.queues for w in survey.workers):
        problems.append((f"no worker consumes queue {survey.queue!r} (SQL Lab publishes there)", dx.QUEUE_NOT_CONSUMED))
    if problems:
        return failed(
            "; ".join(t for t, _ in problems),
            "give every worker the web's rendered config and no "
            "worker.queues that leave out SQL Lab's queue; restart the worker",
            tuple(dict.fromkeys(m for _, m in problems)),
            **details,
        )
    foreign = [w for w in survey.workers if w.config_path and web_config and not same_file(w.config_path, web_config)]
    summary = (
        f"{len(survey.workers)} worker(s) ({', '.join(survey.names)}) answer in {survey.seconds:.2f}s, "
        f"register {SQLLAB_TASK}, consume {survey.queue!r} on {survey.broker[0]}/{survey.broker[1]}"
    )
    if foreign:
        text = ", ".join(f"{w.name} (pid {w.pid}) runs {w.config_path}" for w in foreign)
        return warned(
            f"{summary}; but {text}, not {web_config}",
            "run every worker with the web's superset_config.py",
            (dx.METADATA_MISMATCH,),
            **details,
        )
    return passed(summary, **details)


def check_worker_redis(target: Target, survey: WorkerSurvey) -> Outcome:
    """Check 8: a task round trip through SQL Lab's queue: the worker consumes the broker and writes results
    to the Redis the web reads them from."""
    if not survey.workers:
        return skipped("no worker answers on the broker (check 4): no worker connection to test")
    view = target.config
    if not view.result_backend:
        return failed(
            "CELERY_CONFIG.result_backend is not set: the worker cannot store task results",
            "render the config with `superset-async render`",
            (dx.RESULTS_BACKEND_MISSING,),
        )
    ours = _redis_identity(view.result_backend)
    elsewhere = [w for w in survey.workers if w.result_backend and not same_redis(w.result_backend, ours)]
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
    details = {
        "queue": survey.queue,
        "result_backend": "/".join(map(str, ours)) if ours else None,
        "round_trip_ms": round(seconds * 1000, 1),
    }
    if elsewhere:
        text = ", ".join(
            f"{w.name} stores results in {'/'.join(map(str, w.result_backend))}" for w in elsewhere if w.result_backend
        )
        reads = "/".join(map(str, ours)) if ours else "?"
        return failed(
            f"{text}; the web reads {reads}",
            "give the worker the web's rendered config and restart it",
            (dx.RESULTS_BACKEND_MISSING,),
            **details,
        )
    if value not in ([nonce], (nonce,)):
        return failed(
            f"a task sent to {survey.queue!r} came back as {str(value)[:200]!r} after {seconds:.1f}s",
            "read the worker's log (is it busy with long queries, or on another result backend?)",
            (dx.NO_WORKER,),
            **details,
        )
    backend = "/".join(map(str, ours)) if ours else "?"
    return passed(
        f"task round trip through {survey.queue!r} and the result backend ({backend}) in {seconds * 1000:.0f} ms",
        **details,
    )


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
