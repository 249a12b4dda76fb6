"""The Celery app the worker runs: Superset's own (`superset.tasks.celery_app:app`), unchanged, with
the collector's objects frozen before each prefork child is forked, and readiness told to whoever
started the worker.

The worker's main process builds Superset's app and forks its pool children from it; they share the
imported code and objects copy-on-write. A child's garbage collections would write to the headers of
every tracked object it inherited and so copy those pages one by one as it runs. `gc.freeze()` in
the parent, right before each fork (Celery's `worker_before_create_process` signal), moves those
objects into the permanent generation, which collections never visit: what Python's gc
documentation recommends before a fork without exec. The web does the same (gunicorn_hooks.py).

Readiness: when the main process's consumer is ready (Celery's `worker_ready` signal, the moment it
logs `ready.`), it sends `READY=1` to $NOTIFY_SOCKET: systemd's for the module's `Type=notify` unit,
the runner's supervisor's for `superset-async up` (sd_notify.py). The variable is taken out of the
environment at import, before any child is forked or Chromium started, so that only the main process
can tell.
"""

from __future__ import annotations

import gc
from typing import Any

from celery.signals import worker_before_create_process, worker_ready
from superset.tasks.celery_app import app

from .sd_notify import notify, take_notify_socket

__all__ = ["app"]

_NOTIFY_SOCKET = take_notify_socket()


def _freeze_before_fork(**_: Any) -> None:
    gc.collect()
    gc.freeze()


def _tell_ready(**_: Any) -> None:
    if _NOTIFY_SOCKET:
        notify(_NOTIFY_SOCKET, "READY=1")


worker_before_create_process.connect(_freeze_before_fork, weak=False)
worker_ready.connect(_tell_ready, weak=False)
