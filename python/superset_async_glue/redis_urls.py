"""Redis addresses of every role, in the three URL dialects the stack's clients speak.

kombu (broker) and Celery's result backend spell a unix socket "redis+socket://"; redis-py and
flask-caching spell it "unix://". `role_url` never puts credentials in a URL: the rendered config
inserts them after "//" when Superset imports it (render.py emits `_with_auth`, the same rule as
`with_auth` here, for a config that must run without the glue: keep the two in step); the glue's own
clients (the runner's probes) add them with `with_auth`.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote, urlencode

from .settings import Redis, sentinel_address

Dialect = Literal["kombu", "celery_backend", "redis_py"]


def role_url(redis: Redis, db: int, dialect: Dialect) -> str:
    """URL of Redis database `db` for a client speaking `dialect`, without credentials."""
    if redis.unix_socket:
        path = quote(redis.unix_socket)
        if dialect == "redis_py":
            return f"unix://{path}?db={db}"
        key = "virtual_host" if dialect == "kombu" else "db"
        return f"redis+socket://{path}?{key}={db}"
    scheme = "rediss" if redis.tls.enabled else "redis"
    url = f"{scheme}://{tcp_address(redis)}/{db}"
    if redis.tls.enabled and dialect == "redis_py":
        url += "?" + urlencode(redis_py_tls_query(redis))
    return url


def tcp_address(redis: Redis, host: str | None = None) -> str:
    """host:port of the Redis server (`host` overrides redis.host), an IPv6 host in brackets."""
    host = host or redis.host
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{redis.port}"


def with_auth(url: str, username: str | None, password: str | None) -> str:
    """`url` with `username:password@` (URL-quoted) after its "//"; unchanged without a password."""
    if password is None:
        return url
    return url.replace("//", f"//{quote(username or '', safe='')}:{quote(password, safe='')}@", 1)


def redis_py_tls_query(redis: Redis) -> dict[str, str]:
    """redis-py reads these from a rediss:// URL's query (Celery and kombu take them as *_use_ssl).

    The client key is a secret file whose path may move to $CREDENTIALS_DIRECTORY, so the rendered
    config appends ssl_keyfile itself at import time.
    """
    query: dict[str, str] = {"ssl_cert_reqs": redis.tls.verify}
    for key, value in (
        ("ssl_ca_certs", redis.tls.ca_file),
        ("ssl_certfile", redis.tls.cert_file),
    ):
        if value:
            query[key] = value
    return query


def sentinels(redis: Redis) -> list[tuple[str, int]]:
    """(host, port) of every Sentinel, as redis-py's Sentinel takes them; empty without redis.sentinel."""
    return [sentinel_address(a) for a in redis.sentinel.sentinels] if redis.sentinel else []


def sentinel_role_urls(redis: Redis, db: int) -> list[str]:
    """One sentinel://host:port/db URL per Sentinel, without credentials: kombu and Celery's result backend
    join them with ";" and ask each Sentinel in turn for the master (the password in a URL is the data
    nodes'; the Sentinels' own goes in sentinel_kwargs)."""
    return [f"sentinel://{f'[{h}]' if ':' in h else h}:{p}/{db}" for h, p in sentinels(redis)]


def sentinel_kwargs(password: str | None, timeout: float) -> dict[str, object]:
    """What the glue's own clients pass as redis-py's Sentinel(sentinel_kwargs=): the Sentinels' password,
    never the data nodes' (the libraries' defaults differ, docs/production.md), and short timeouts."""
    return {"password": password, "socket_connect_timeout": timeout, "socket_timeout": timeout}
