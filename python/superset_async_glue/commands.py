"""The command line and environment of each long-running role: the one place both the local runner
and the NixOS module take them from (the module runs `superset-async exec ROLE`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .errors import UsageError
from .render_flower import flower_conf_path
from .settings import Settings
from .sql_lab_lanes import lane_queue, lane_role, lane_worker_hostname

Role = Literal["web", "worker", "beat", "flower"]
ROLES: tuple[Role, ...] = ("web", "worker", "beat", "flower")
# Superset's own Celery app (superset.tasks.celery_app:app), with gc.freeze() before each prefork
# child is forked (worker_app.py).
WORKER_APP = "--app=superset_async_glue.worker_app:app"
# Beat sends its periodic messages by task name: a bare Celery app on the same CELERY_CONFIG, no Superset.
BEAT_APP = "--app=superset_async_glue.beat_app:app"


@dataclass(frozen=True)
class RoleCommand:
    """What to exec for one role: argument vector and the environment it adds."""

    role: Role | str  # a lane worker's role is lane_role(NAME)
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


def role_environment(settings: Settings, config_path: Path) -> dict[str, str]:
    """Environment every Superset process (web, worker, beat, bootstrap) needs."""
    return {
        "SUPERSET_CONFIG_PATH": str(config_path),
        "SUPERSET_HOME": settings.state_dir,
        "FLASK_APP": "superset",
        "PYTHONUNBUFFERED": "1",
    }


def beat_schedule_path(settings: Settings) -> str:
    return f"{settings.state_dir}/celerybeat-schedule"


def web_bind(settings: Settings) -> str:
    host = settings.web.bind
    return f"[{host}]:{settings.web.port}" if ":" in host else f"{host}:{settings.web.port}"


def worker_argv(settings: Settings, bin_dir: Path, lane: str | None = None) -> list[str]:
    """`celery worker` of the main worker (lane None) or of SQL Lab lane `lane`: the same app, pool,
    -O, mingle and recycling; a lane differs only in its concurrency, its one queue and its node name."""
    k = settings.worker
    if lane is not None and lane not in settings.sql_lab.lanes:
        known = ", ".join(sorted(settings.sql_lab.lanes)) or "none (sql_lab.lanes is empty)"
        raise UsageError(f"no SQL Lab lane named {lane!r} in the settings; lanes: {known}")
    concurrency = k.concurrency if lane is None else settings.sql_lab.lanes[lane].concurrency
    argv = [
        str(bin_dir / "python"),
        str(bin_dir / "celery"),
        WORKER_APP,
        "worker",
        f"--pool={k.pool}",
        "-O",
        k.optimization,
        f"--concurrency={concurrency}",
        "--loglevel=INFO",
        # Mingle asks other workers for their revoked task ids and waits a full second for answers
        # at every start; Superset never revokes a task, so it only delays readiness (docs/performance.md).
        "--without-mingle",
    ]
    if lane is not None:
        # Two workers on one host need distinct node names (Celery would warn of a duplicate and
        # `inspect` would merge their answers).
        argv += [f"--queues={lane_queue(lane)}", f"--hostname={lane_worker_hostname(lane)}"]
    elif k.queues:
        argv.append("--queues=" + ",".join(k.queues))
    if k.max_tasks_per_child:
        argv.append(f"--max-tasks-per-child={k.max_tasks_per_child}")
    return argv + list(k.extra_args)


def lane_command(lane: str, settings: Settings, config_path: Path, bin_dir: Path) -> RoleCommand:
    """The command of SQL Lab lane `lane`'s worker (`exec worker --lane NAME`)."""
    argv = worker_argv(settings, bin_dir, lane)
    return RoleCommand(role=lane_role(lane), argv=tuple(argv), env=role_environment(settings, config_path))


def role_command(role: Role, settings: Settings, config_path: Path, bin_dir: Path) -> RoleCommand:
    """The command for `role`, with programs taken from `bin_dir` (a virtualenv's or the Nix env's bin).

    Each program script is run by the environment's own interpreter rather than through its `#!`
    line, which names the path the environment was built at: a container or another mount of the
    same environment then runs it too. The process's command line is the same either way.
    """
    env = role_environment(settings, config_path)
    python = str(bin_dir / "python")
    if role == "web":
        w = settings.web
        argv = [
            python,
            str(bin_dir / "gunicorn"),
            f"--bind={web_bind(settings)}",
            f"--workers={w.workers}",
            "--worker-class=gthread",
            f"--threads={w.threads}",
            f"--timeout={w.timeout_seconds}",
            # gunicorn's own defaults unless raised on purpose (Superset's docs suggest 0, unlimited, for
            # long explore URLs; 6.1 keeps chart state server-side behind a short form_data_key).
            f"--limit-request-line={w.limit_request_line}",
            f"--limit-request-field_size={w.limit_request_field_size}",
            "--no-control-socket",  # gunicorn 27 would otherwise open one under $HOME/.gunicorn
            # One app import in the master, workers forked from it (shared memory, faster start); the
            # hooks drop the connections a worker inherits (gunicorn_hooks.py; docs/performance.md).
            "--preload",
            "--config=python:superset_async_glue.gunicorn_hooks",
            "--access-logfile=-",
            *w.extra_args,
            "superset.app:create_app()",
        ]
    elif role == "worker":
        argv = worker_argv(settings, bin_dir)
    elif role == "flower":
        f = settings.flower
        argv = [
            python,
            str(bin_dir / "celery"),
            BEAT_APP,  # a bare Celery app on the same CELERY_CONFIG: Flower needs the broker, not Superset
            "flower",
            f"--address={f.bind}",
            f"--port={f.port}",
            # Basic auth is read from its file by this rendered file, never passed here (render_flower.py).
            f"--conf={flower_conf_path(config_path)}",
        ]
    else:
        argv = [
            python,
            str(bin_dir / "celery"),
            BEAT_APP,
            "beat",
            f"--schedule={beat_schedule_path(settings)}",
            "--loglevel=INFO",
            *settings.beat.extra_args,
        ]
    return RoleCommand(role=role, argv=tuple(argv), env=env)
