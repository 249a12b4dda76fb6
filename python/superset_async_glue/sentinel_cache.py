"""Flask-Caching's RedisSentinelCache, reading from the master as it writes there.

Named by CACHE_TYPE in the rendered superset_config.py when redis.sentinel is set. Upstream's class
reads from a replica (`slave_for`), and Redis replicates asynchronously: the browser's request for a
chart's data, which GLOBAL_ASYNC_QUERIES hands over through DATA_CACHE_CONFIG right after the worker
wrote it on the master, can miss it on a replica that lags, and the chart then fails. Reads here go to
the master too. Imports only Flask-Caching and redis-py: web and worker import it by name, without the
rest of the glue.
"""

from __future__ import annotations

from typing import Any

from flask_caching.backends.rediscache import RedisSentinelCache


class MasterSentinelCache(RedisSentinelCache):
    """RedisSentinelCache whose reads go to the master (no stale read after a write)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call] # Flask-Caching is untyped here
        self._read_client = self._write_client
