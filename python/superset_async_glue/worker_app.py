"""The Celery app the worker runs: Superset's own (`superset.tasks.celery_app:app`), unchanged, with
the collector's objects frozen before each prefork child is forked.

The worker's main process builds Superset's app and forks its pool children from it; they share the
imported code and objects copy-on-write. A child's garbage collections would write to the headers of
every tracked object it inherited and so copy those pages one by one as it runs. `gc.freeze()` in
the parent, right before each fork (Celery's `worker_before_create_process` signal), moves those
objects into the permanent generation, which collections never visit: what Python's gc
documentation recommends before a fork without exec. The web does the same (gunicorn_hooks.py).
"""

from __future__ import annotations

import gc
from typing import Any

from celery.signals import worker_before_create_process
from superset.tasks.celery_app import app

__all__ = ["app"]


def _freeze_before_fork(**_: Any) -> None:
    gc.collect()
    gc.freeze()


worker_before_create_process.connect(_freeze_before_fork, weak=False)
