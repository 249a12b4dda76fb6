"""gunicorn hooks for the web role, which runs with `--preload` (commands.py).

With --preload the master builds Superset's app once and forks the workers from it: they share the
imported code and the app's objects copy-on-write (less memory, one app import at start instead of
one per worker fighting for the same cores). What must not be shared across the fork is any open
connection the master made while building the app; each worker drops its inherited copies before
it serves anything:

- the metadata database's SQLAlchemy pool: `engine.dispose(close=False)`, SQLAlchemy's recipe for
  a forked process (the parent's connections are forgotten, not closed under its feet);
- Celery's broker connection and producer pools (the web publishes SQL Lab and GAQ tasks), which
  Celery resets only in its own billiard children, not after gunicorn's fork.

redis-py's pools reset themselves in a new process (they compare the pid), and the SQL Lab
watchdog starts its thread at a worker's first request (sqllab_watchdog.py), so both need nothing.

Before the first fork the master also imports what a worker's first request on databases would
import lazily (preload.py: engine specs, each database's dialect and driver), and it moves every
object it holds into the collector's permanent generation (`gc.freeze()`, what Python's gc
documentation recommends before fork without exec): a worker's collections then never write to
those objects' headers, so the pages stay shared instead of being copied one by one as the workers
run.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from .preload import import_for_queries


def when_ready(server: Any) -> None:
    """gunicorn's when_ready: in the master, app preloaded, before any worker is forked."""
    _preload_for_requests(server)
    gc.collect()
    gc.freeze()
    server.log.info("superset-async: %d objects of the preloaded app frozen for the workers", gc.get_freeze_count())


def _preload_for_requests(server: Any) -> None:
    """Import what a worker's first request on databases imports lazily (preload.py), once, here."""
    started = time.monotonic()
    try:
        with server.app.wsgi().app_context():
            drivers = import_for_queries()
    except Exception as err:  # an optimisation only: the first request then imports what it needs itself
        server.log.warning("superset-async: preload failed (%s: %s); requests import lazily", type(err).__name__, err)
        return
    server.log.info(
        "superset-async: engine specs and %d database driver(s) preloaded in %.2fs", drivers, time.monotonic() - started
    )


def post_fork(server: Any, worker: Any) -> None:
    """gunicorn's post_fork: runs in each new worker, before it serves a request."""
    app = server.app.wsgi()  # the app the master preloaded
    from superset.extensions import celery_app, db  # noqa: PLC0415 - imported by the master already

    with app.app_context():
        db.engine.dispose(close=False)
    after_fork = getattr(celery_app, "_after_fork", None)  # Celery's own post-fork reset of its pools
    if callable(after_fork):
        after_fork()
    worker.log.info("superset-async: connections inherited from the preloading master dropped")
