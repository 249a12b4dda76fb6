"""Gather for checks 2 and 3: a PING through every Redis client the config builds, and whether the
broker's Redis persists anything (queued tasks survive its restart only with AOF or RDB).

Each client is built the way its library builds it from the config (kombu for the broker, Celery
for its result backend, cachelib's own client for RESULTS_BACKEND, redis.from_url as flask-caching
does, RedisCacheBackend's keywords for GAQ), then given short timeouts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from .celery_app import TIMEOUT, bare_app, connection_identity
from .facts import Persistence, Ping, RedisFacts, SentinelAnswer, SentinelFacts
from .target import LoadedConfig, RedisEndpoint, Target


@contextmanager
def redis_client(endpoint: RedisEndpoint, view: LoadedConfig) -> Iterator[Any]:
    """A redis.Redis for `endpoint`, built as Superset's library builds it, with short timeouts."""
    import redis  # noqa: PLC0415

    timeouts: dict[str, Any] = {"socket_connect_timeout": TIMEOUT, "socket_timeout": TIMEOUT}
    if endpoint.kind == "kombu":
        app = bare_app(view)
        connection = app.connection_for_write()
        try:
            # Two quick attempts; connect() would wait 2 s before its retry, default_channel retries for ever.
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=TIMEOUT)
            channel = connection.channel()
            try:
                yield channel.client
            finally:
                channel.close()
        finally:
            connection.release()
            app.close()
        return
    if endpoint.kind == "celery_backend":
        app = bare_app(view)
        try:
            yield app.backend.client
        finally:
            app.close()
        return
    if endpoint.kind == "sentinel":
        kwargs = dict(endpoint.kwargs)
        sentinels, master = kwargs.pop("sentinels"), kwargs.pop("master")
        sentinel_kwargs = {**kwargs.pop("sentinel_kwargs"), **timeouts}
        # redis-py's sentinel module has no type hints.
        finder = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            sentinels, sentinel_kwargs=sentinel_kwargs, **kwargs, **timeouts
        )
        client = finder.master_for(master)  # type: ignore[no-untyped-call]
    elif endpoint.kind == "redis_url":
        assert endpoint.url is not None  # noqa: S101 - redis_url endpoints always carry one
        client = redis.Redis.from_url(endpoint.url, **endpoint.kwargs, **timeouts)
    else:
        kwargs = dict(endpoint.kwargs)
        connection_class = kwargs.pop("connection_class", None)
        if connection_class is not None:  # a clone of an existing client's pool
            kwargs.update(timeouts)
            client = redis.Redis(connection_pool=redis.ConnectionPool(connection_class=connection_class, **kwargs))
        else:
            client = redis.Redis(**kwargs, **timeouts)
    try:
        yield client
    finally:
        client.close()


def ping_one(endpoint: RedisEndpoint, view: LoadedConfig) -> Ping:
    started = time.monotonic()
    server, db = "?", -1
    try:
        with redis_client(endpoint, view) as client:
            pool = client.connection_pool
            if hasattr(pool, "get_master_address"):  # through Sentinel: the master it names now
                host, port = pool.get_master_address()
                host = host.decode() if isinstance(host, bytes) else host
                server, db = connection_identity({"host": host, "port": port, "db": _sentinel_pool_db(endpoint, pool)})
            else:
                server, db = connection_identity(pool.connection_kwargs)
            client.ping()
    except Exception as err:
        error = f"{type(err).__name__}: {err}"
        return Ping(endpoint.role, endpoint.client, server, db, False, time.monotonic() - started, error)
    return Ping(endpoint.role, endpoint.client, server, db, True, time.monotonic() - started)


def _sentinel_pool_db(endpoint: RedisEndpoint, pool: Any) -> int:
    # kombu and Celery hand the DB to master_for, our own endpoints to Sentinel(): either way it reaches the pool.
    return int(pool.connection_kwargs.get("db", endpoint.kwargs.get("db", 0)) or 0)


def sentinel_facts(view: LoadedConfig) -> SentinelFacts | None:
    """Each Sentinel of the config asked for the master's address, as every client asks it."""
    import redis  # noqa: PLC0415

    found = view.sentinel
    if found is None:
        return None
    sentinels, master_name, kwargs = found
    kwargs = {**kwargs, "socket_connect_timeout": TIMEOUT, "socket_timeout": TIMEOUT}

    def ask(address: tuple[str, int]) -> SentinelAnswer:
        host, port = address
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        client = redis.Redis(host=host, port=port, **kwargs)
        try:
            master = client.sentinel_get_master_addr_by_name(master_name)  # type: ignore[no-untyped-call]
        except Exception as err:
            return SentinelAnswer(where, None, f"{type(err).__name__}: {err}")
        finally:
            client.close()
        if not master:
            return SentinelAnswer(where)
        host = master[0].decode() if isinstance(master[0], bytes) else str(master[0])
        return SentinelAnswer(where, f"[{host}]:{master[1]}" if ":" in host else f"{host}:{master[1]}")

    with ThreadPoolExecutor(max_workers=len(sentinels)) as pool:
        return SentinelFacts(master_name, tuple(pool.map(ask, sentinels)))


def persistence_of(client: Any) -> Persistence:
    """AOF and RDB as the server reports them; CONFIG may be refused by an ACL: then unknown, with why."""
    try:
        appendonly = client.config_get("appendonly").get("appendonly")
        save = client.config_get("save").get("save")
    except Exception as err:
        return Persistence(unknown=f"{type(err).__name__}: {err}")
    if appendonly is None or save is None:
        return Persistence(unknown="CONFIG GET returned no appendonly/save (a Redis-compatible server?)")
    return Persistence(aof=str(appendonly) == "yes", rdb=bool(str(save).strip()))


def broker_persistence(endpoint: RedisEndpoint, view: LoadedConfig) -> Persistence:
    try:
        with redis_client(endpoint, view) as client:
            return persistence_of(client)
    except Exception as err:  # the PING of the same client reports the connection itself
        return Persistence(unknown=f"{type(err).__name__}: {err}")


def redis_facts(target: Target) -> RedisFacts:
    """Every client's PING, with the DBs the settings give each role (checks 2 and 3 share this)."""
    view = target.config
    if view.error is not None:
        return RedisFacts(view.error)
    broker = next((e for e in view.endpoints if e.role == "broker" and e.kind == "kombu"), None)
    with ThreadPoolExecutor(max_workers=max(1, len(view.endpoints) + 2)) as pool:
        sentinel = pool.submit(sentinel_facts, view)
        persistence = pool.submit(broker_persistence, broker, view) if broker is not None else None
        pings = tuple(pool.map(lambda e: ping_one(e, view), view.endpoints))
    broker_ok = any(p.ok for p in pings if p.role == "broker")
    dbs = target.settings.redis.dbs
    return RedisFacts(
        None,
        pings,
        {role: getattr(dbs, role) for role in ("broker", "results", "cache", "data_cache", "async_events")},
        view.cache_types(),
        view.gaq_enabled,
        persistence.result() if persistence is not None and broker_ok else None,
        sentinel.result(),
    )
