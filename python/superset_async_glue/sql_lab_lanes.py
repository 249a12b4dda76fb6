"""SQL Lab lanes (sql_lab.lanes): chosen databases get a Celery queue and worker slots of their own.

Whether a query is short is not known when it is submitted; its database is. A lane's queries are
routed to its queue, `sql_lab_lane_NAME`, which only that lane's worker consumes, so they never wait
behind the shared queue (docs/performance.md, "A short query among long ones").

This module is loaded by every process that reads CELERY_CONFIG: the web and the worker (inside
Superset), but also beat's and Flower's bare Celery app (beat_app.py), which have no Superset. It
therefore imports nothing of Superset at import time; the router does, inside the call, and only for
the one task it routes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .settings import Settings

LANE_QUEUE_PREFIX = "sql_lab_lane_"
# The one task lanes route: Superset's sql_lab.get_sql_results, sent by superset/sqllab/sql_json_executer.py
# as .delay(query_id, rendered_query, ...). Reports, GAQ chart tasks and log pruning stay on the default queue.
SQL_LAB_TASK = "sql_lab.get_sql_results"
# The key of the lane map (database name -> queue) in the rendered CELERY_CONFIG: every Celery app built
# from it (the web's, the watchdog's, Flower's, verify's) reads the lanes from where it reads the broker.
LANES_CONF_KEY = "superset_async_sql_lab_lanes"
# The router as Celery's task_routes names it: a string, imported by Celery on the first task sent.
ROUTER = "superset_async_glue.sql_lab_lanes.route_sql_lab_query"


def lane_queue(name: str) -> str:
    """The Celery queue of lane `name`: the one place its spelling lives."""
    return f"{LANE_QUEUE_PREFIX}{name}"


# The lane worker's Celery node name starts with this (lane_NAME@host); the main worker's never does.
LANE_NODE_PREFIX = "lane_"
# The lane worker's role in the runner and its NixOS unit's suffix: worker-NAME (superset-async-worker-NAME).
LANE_ROLE_PREFIX = "worker-"


def lane_worker_hostname(name: str) -> str:
    """The lane worker's Celery node name: two workers on one host need distinct names."""
    return f"{LANE_NODE_PREFIX}{name}@%h"


def lane_role(name: str) -> str:
    return f"{LANE_ROLE_PREFIX}{name}"


def is_lane_role(role: str) -> bool:
    return role.startswith(LANE_ROLE_PREFIX)


def lane_of_queue(queue: str) -> str | None:
    """The lane whose queue `queue` is, or None for any other queue."""
    return queue.removeprefix(LANE_QUEUE_PREFIX) if queue.startswith(LANE_QUEUE_PREFIX) else None


def queue_has_consumer(queue: str, workers: Iterable[str]) -> bool:
    """Whether a Celery worker among `workers` (node names that answered a ping) consumes `queue`: a
    lane's queue needs its lane's worker, any other queue the main worker (a node not named lane_...)."""
    lane = lane_of_queue(queue)
    if lane is not None:
        return any(w.startswith(f"{LANE_NODE_PREFIX}{lane}@") for w in workers)
    return any(not w.startswith(LANE_NODE_PREFIX) for w in workers)


def lane_queues(settings: Settings) -> tuple[str, ...]:
    """Every lane's queue, in lane-name order."""
    return tuple(lane_queue(name) for name in sorted(settings.sql_lab.lanes))


def lane_map(settings: Settings) -> dict[str, str]:
    """Superset database name -> the queue of its lane (databases in no lane are absent)."""
    return {db: lane_queue(name) for name, lane in settings.sql_lab.lanes.items() for db in lane.databases}


def configured_lane_queues(conf: Mapping[str, Any]) -> list[str]:
    """The lane queues of a Celery app's configuration (CELERY_CONFIG as rendered), sorted; [] without lanes."""
    return lane_queues_of(conf.get(LANES_CONF_KEY))


def lane_queues_of(lanes: Mapping[str, str] | None) -> list[str]:
    """The queues of a rendered lane map (database name -> queue), sorted."""
    return sorted(set((lanes or {}).values()))


def queue_for_database(lanes: dict[str, str], database_name: str | None) -> dict[str, str] | None:
    """Celery's route for a query on `database_name`: its lane's queue, or None for the default queue."""
    if database_name is None or database_name not in lanes:
        return None
    return {"queue": lanes[database_name]}


def route_sql_lab_query(
    name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **_: Any
) -> dict[str, str] | None:
    """Celery router (task_routes): a SQL Lab query on a lane database goes to that lane's queue.

    Runs in the process that sends the task (the web, inside its request). Every other task, and a
    query whose row or lane map cannot be found, gets None: Celery's default queue, as without lanes.
    """
    if name != SQL_LAB_TASK or not args:
        return None
    from celery import current_app  # noqa: PLC0415
    from flask import has_app_context  # noqa: PLC0415 - only the web routes this task

    lanes = (getattr(task, "app", None) or current_app).conf.get(LANES_CONF_KEY) or {}
    if not lanes or not has_app_context():  # no request, no session to find the query in
        return None
    from superset.extensions import db  # noqa: PLC0415 - never at import: beat and Flower have no Superset
    from superset.models.sql_lab import Query  # noqa: PLC0415

    query = db.session.get(Query, args[0])  # the web added this row moments ago, in this session
    database = getattr(query, "database", None)
    return queue_for_database(lanes, getattr(database, "database_name", None))
