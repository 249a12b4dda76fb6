"""The Celery app beat runs: Superset's CELERY_CONFIG on a bare Celery app, without importing Superset.

Beat only sends the periodic messages of `beat_schedule` (`reports.scheduler` every minute,
`reports.prune_log` daily) by task name; the worker, which runs Superset's own celery_app, executes
them. Superset's app (`superset.tasks.celery_app:app`) builds the whole Flask application first:
about 200 MiB and several CPU-seconds at every start for a process that never runs a task.

The configuration is the rendered superset_config.py's CELERY_CONFIG, read from
SUPERSET_CONFIG_PATH as Superset reads it, so broker, TLS, routes and the schedule are the very
ones the worker and the web use. Only `imports` is emptied: beat's start imports those modules
(Celery's loader.init_worker), and they are Superset's task modules. A task that is not registered
is sent by name (celery.beat.Scheduler.apply_async falls back to send_task), as Superset's beat
sends it, to the queue the configuration routes it to.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import GlueError

CONFIG_ENV = "SUPERSET_CONFIG_PATH"


class BeatConfigError(GlueError):
    """The rendered configuration cannot be found or has no CELERY_CONFIG."""


def superset_config(path: str) -> ModuleType:
    """Import the rendered superset_config.py (it imports redis, cachelib and celery, not Superset)."""
    spec = importlib.util.spec_from_file_location("superset_config", path)
    if spec is None or spec.loader is None or not Path(path).is_file():
        raise BeatConfigError(f"superset-async beat: {CONFIG_ENV}={path} is not a readable superset_config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def make_app(config_path: str | None = None) -> Any:
    """A Celery app configured from the config's CELERY_CONFIG, with no task module to import."""
    from celery import Celery  # noqa: PLC0415 - only the beat process needs Celery here

    path = config_path or os.environ.get(CONFIG_ENV)
    if not path:
        raise BeatConfigError(
            f"superset-async beat: {CONFIG_ENV} is not set; run beat through `superset-async exec beat` "
            "or `superset-async up`, which set it to the rendered superset_config.py"
        )
    celery_config = getattr(superset_config(path), "CELERY_CONFIG", None)
    if celery_config is None:
        raise BeatConfigError(f"superset-async beat: {path} defines no CELERY_CONFIG; render it again")
    app = Celery("superset", set_as_current=True)
    app.config_from_object(celery_config)
    app.conf.update(imports=(), include=())
    return app


def __getattr__(name: str) -> Any:
    # `celery --app=superset_async_glue.beat_app:app` reads `app`: built then, so that importing this
    # module (tests, tools) needs no SUPERSET_CONFIG_PATH.
    if name == "app":
        return make_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
