"""Redis addresses of every role, in the three URL dialects the stack's clients speak.

kombu (broker) and Celery's result backend spell a unix socket "redis+socket://"; redis-py and
flask-caching spell it "unix://". URLs here never carry credentials: the rendered config inserts
them after "//" when Superset imports it (see render.py, `_with_auth`).
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote, urlencode

from .settings import Redis

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


def tcp_address(redis: Redis) -> str:
    host = f"[{redis.host}]" if ":" in redis.host else redis.host
    return f"{host}:{redis.port}"


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
