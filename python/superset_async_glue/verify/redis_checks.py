"""Checks 2 and 3: PING through every Redis client the config builds, and one DB per role.

Each client is built the way its library builds it from the config (kombu for the broker, Celery
for its result backend, cachelib's own client for RESULTS_BACKEND, redis.from_url as flask-caching
does, RedisCacheBackend's keywords for GAQ), then given short timeouts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from . import diagnosis as dx
from .celery_app import TIMEOUT, bare_app, connection_identity
from .model import Outcome, failed, passed, warned
from .target import ConfigView, RedisEndpoint, Target


@dataclass(frozen=True)
class Ping:
    """One client's PING: where it went (server, db), whether Redis answered, and how fast."""

    endpoint: RedisEndpoint
    server: str
    db: int
    ok: bool
    seconds: float
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.endpoint.role} ({self.endpoint.client})"


@contextmanager
def redis_client(endpoint: RedisEndpoint, view: ConfigView) -> Iterator[Any]:
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
    if endpoint.kind == "redis_url":
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


def ping_one(endpoint: RedisEndpoint, view: ConfigView) -> Ping:
    started = time.monotonic()
    server, db = "?", -1
    try:
        with redis_client(endpoint, view) as client:
            server, db = connection_identity(client.connection_pool.connection_kwargs)
            client.ping()
    except Exception as err:
        return Ping(endpoint, server, db, False, time.monotonic() - started, f"{type(err).__name__}: {err}")
    return Ping(endpoint, server, db, True, time.monotonic() - started)


def ping_all(view: ConfigView) -> list[Ping]:
    with ThreadPoolExecutor(max_workers=max(1, len(view.endpoints))) as pool:
        return list(pool.map(lambda e: ping_one(e, view), view.endpoints))


def _mode(ping: Ping) -> str:
    return dx.BROKER_UNREACHABLE if ping.endpoint.role == "broker" else dx.REDIS_UNREACHABLE


def check_redis_ping(target: Target, pings: list[Ping]) -> Outcome:
    """Check 2: Redis answers PING on every URL the rendered config uses (web side)."""
    details = {
        "clients": [
            {
                "role": p.endpoint.role,
                "client": p.endpoint.client,
                "server": p.server,
                "db": p.db,
                "ok": p.ok,
                "ms": round(p.seconds * 1000, 1),
                "error": p.error,
            }
            for p in pings
        ]
    }
    source = "" if target.config.loaded else " (URLs rebuilt from the settings: the config did not load, see check 6)"
    bad = [p for p in pings if not p.ok]
    if bad:
        reason = "; ".join(f"{p.label} on {p.server}/{p.db}: {p.error}" for p in bad)
        return failed(
            f"{len(bad)} of {len(pings)} clients got no PONG: {reason}{source}",
            "start Redis and check redis.host/port/unix_socket/password_file against the server",
            tuple(dict.fromkeys(_mode(p) for p in bad)),
            **details,
        )
    slowest = max((p.seconds for p in pings), default=0.0)
    servers = sorted({p.server for p in pings})
    return passed(
        f"PONG from {len(pings)} clients ({', '.join(p.endpoint.client for p in pings)}) on "
        f"{', '.join(servers)}; slowest {slowest * 1000:.0f} ms{source}",
        **details,
    )


def check_redis_roles(target: Target, pings: list[Ping]) -> Outcome:
    """Check 3: every role has its own reachable DB; the results backend exists."""
    view, settings = target.config, target.settings
    roles: dict[tuple[str, int], set[str]] = {}
    for p in pings:
        if p.db >= 0:
            roles.setdefault((p.server, p.db), set()).add(p.endpoint.role)
    table = {
        role: sorted({f"{p.server}/{p.db}" for p in pings if p.endpoint.role == role})
        for role in ("broker", "results", "cache", "data_cache", "async_events")
    }
    details = {"roles": table}
    problems: list[tuple[str, str]] = []
    if view.results_backend is None:
        problems.append(
            ("RESULTS_BACKEND is not set: async SQL Lab has nowhere to store results", dx.RESULTS_BACKEND_MISSING)
        )
    if not view.result_backend:
        problems.append(("CELERY_CONFIG.result_backend is not set", dx.RESULTS_BACKEND_MISSING))
    for (server, db), names in sorted(roles.items()):
        if len(names) > 1:
            problems.append((f"roles {', '.join(sorted(names))} share {server}/{db}", dx.REDIS_ROLES_SHARED))
    for p in pings:
        if not p.ok:
            problems.append((f"{p.label} unreachable", _mode(p)))
    gaq_on = settings.global_async_queries.enabled
    for key, kind in view.cache_types.items():
        if kind not in ("RedisCache", "redis"):
            mode = dx.GAQ_BACKEND if gaq_on and key != "CACHE_CONFIG" else dx.UNKNOWN
            problems.append((f"{key} is {kind}, not Redis", mode))
    if problems:
        return failed(
            "; ".join(text for text, _ in problems),
            "render superset_config.py with `superset-async render` (one Redis DB per role) and restart web and worker",
            tuple(dict.fromkeys(m for _, m in problems)),
            **details,
        )
    drift = [
        f"{role} is DB {db} in the config, {getattr(settings.redis.dbs, role)} in the settings"
        for (_server, db), names in roles.items()
        for role in names
        if db != getattr(settings.redis.dbs, role)
    ]
    reason = ", ".join(
        f"{role} {'/'.join(x.rsplit('/', 1)[1] for x in where)}" for role, where in table.items() if where
    )
    if drift:
        return warned(
            f"roles on distinct DBs ({reason}), but {'; '.join(drift)}",
            "render the config again from these settings (superset-async render)",
            (),
            **details,
        )
    return passed(f"one DB per role: {reason}; all reachable", **details)
