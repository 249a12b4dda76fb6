"""The Celery app the worker runs: Superset's own (`superset.tasks.celery_app:app`), unchanged, with
the collector's objects frozen before each prefork child is forked, and readiness told to whoever
started the worker.

The worker's main process builds Superset's app and forks its pool children from it; they share the
imported code and objects copy-on-write. A child's garbage collections would write to the headers of
every tracked object it inherited and so copy those pages one by one as it runs. `gc.freeze()` in
the parent, right before each fork (Celery's `worker_before_create_process` signal), moves those
objects into the permanent generation, which collections never visit: what Python's gc
documentation recommends before a fork without exec. The web does the same (gunicorn_hooks.py).

Before the pool forks (Celery's `worker_init` signal, main process only), the main process imports
what a child's first SQL Lab task would otherwise import on its own, on the clock of the first query
(preload.py: engine specs, each database's dialect and driver, pyarrow's pandas conversion); and
it builds cffi's C parser once, which billiard otherwise builds in every new child (each one sets its
parent-death signal with cffi when cffi is loaded: 20-90 ms of CPU per child at every start). Modules
only: no database connection is left open when the children fork.

Readiness: when the main process's consumer is ready (Celery's `worker_ready` signal, the moment it
logs `ready.`), it sends `READY=1` to $NOTIFY_SOCKET: systemd's for the module's `Type=notify` unit,
the runner's supervisor's for `superset-async up` (sd_notify.py). The variable is taken out of the
environment at import, before any child is forked or Chromium started, so that only the main process
can tell.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from typing import Any

from celery.signals import worker_before_create_process, worker_init, worker_ready
from superset.tasks.celery_app import app, flask_app

from .preload import import_for_queries
from .sd_notify import notify, take_notify_socket

__all__ = ["app"]

log = logging.getLogger(__name__)
_NOTIFY_SOCKET = take_notify_socket()


def _freeze_before_fork(**_: Any) -> None:
    gc.collect()
    gc.freeze()


def _import_what_tasks_use() -> int:
    drivers = import_for_queries()
    if "cffi" in sys.modules:  # billiard's set_pdeathsig in each child: cffi's parser, built once here
        sys.modules["cffi"].FFI().cdef("int prctl (int __option, ...);")
    return drivers


def _preload_for_tasks(**_: Any) -> None:
    started = time.monotonic()
    try:
        with flask_app.app_context():
            drivers = _import_what_tasks_use()
    except Exception as err:  # an optimisation only: the first task then imports what it needs itself
        log.warning("preload before the pool forks failed (%s: %s); tasks import lazily", type(err).__name__, err)
        return
    log.info("preload: engine specs and %d database driver(s) in %.2fs", drivers, time.monotonic() - started)


def _tell_ready(**_: Any) -> None:
    if _NOTIFY_SOCKET:
        notify(_NOTIFY_SOCKET, "READY=1")


worker_before_create_process.connect(_freeze_before_fork, weak=False)
worker_init.connect(_preload_for_tasks, weak=False)
worker_ready.connect(_tell_ready, weak=False)
