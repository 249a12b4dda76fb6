"""verify's gather of the broker Redis's persistence (redis_io.persistence_of) on a real redis-server.

The verdicts it leads to are rows of test_verify_verdicts.py; this checks the facts Redis gives.
"""

from __future__ import annotations

import secrets

import redis
from fixtures.redis_server import RedisServer
from superset_async_glue.verify.facts import Persistence
from superset_async_glue.verify.redis_io import persistence_of


def test_a_redis_without_aof_or_rdb_is_seen_as_persisting_nothing(redis_server: RedisServer) -> None:
    # The fixture's redis.conf has `save ""` and `appendonly no`.
    assert persistence_of(redis_server.client()) == Persistence(aof=False, rdb=False)


def test_config_refused_by_an_acl_makes_persistence_unknown(redis_server: RedisServer) -> None:
    admin = redis_server.client()
    user, password = f"no-config-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    admin.acl_setuser(user, enabled=True, passwords=[f"+{password}"], commands=["+@all", "-config"], keys=["*"])
    try:
        limited = redis.Redis(port=redis_server.port, username=user, password=password)
        found = persistence_of(limited)
        limited.close()
    finally:
        admin.acl_deluser(user)
    assert found.unknown is not None and "NoPermissionError" in found.unknown, found
