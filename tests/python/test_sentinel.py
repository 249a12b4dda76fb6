"""Redis Sentinel (redis.sentinel): the settings' checks, the rendered clients, and a real failover.

The failover test runs a master, a replica and three Sentinels (fixtures/sentinel.py) and a runner
stack configured through them; it SIGKILLs the master and expects the next async SQL Lab query to
succeed through the promoted replica with the same web and worker processes, then verify to pass
naming the new master. It prints how long the stack could not run a query.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fixtures.common import SettingsFactory, free_port, run_cli
from fixtures.redis_server import AWKWARD_PASSWORD
from fixtures.sentinel import MASTER_NAME, SENTINEL_PASSWORD, sentinel_cluster, wait_until
from fixtures.stack import start_stack
from fixtures.superset_api import SupersetApiError, SupersetClient
from superset_async_glue.errors import GlueError
from superset_async_glue.loading import load_settings
from superset_async_glue.render import render_config
from superset_async_glue.verify import diagnosis as dx
from superset_async_glue.verify.judge import judge_redis_ping
from superset_async_glue.verify.model import Status
from superset_async_glue.verify.redis_io import redis_facts
from superset_async_glue.verify.target import VerifyOptions, load_target

CITIES = "SELECT count() AS n FROM demo.cities"
SENTINEL = {"master_name": "superset-ha", "sentinels": ["127.0.0.1:26379", "127.0.0.1:26380"]}
DBS = {"broker": 5, "async_events": 0}  # Superset's Sentinel GAQ backend writes to DB 0 (settings.py)


def _error_of(make_settings: SettingsFactory, redis: dict[str, Any], **more: Any) -> str:
    path = make_settings({"redis": {"password_file": "/run/keys/r", **redis}, **more})
    with pytest.raises(GlueError) as raised:
        load_settings(path)
    return str(raised.value)


@pytest.mark.parametrize(
    ("redis", "location", "words"),
    [
        ({"sentinel": {**SENTINEL, "sentinels": []}, "dbs": DBS}, "redis.sentinel.sentinels", "is empty"),
        ({"sentinel": {**SENTINEL, "sentinels": ["10.0.0.5"]}, "dbs": DBS}, "redis.sentinel.sentinels", "host:port"),
        ({"sentinel": {**SENTINEL, "sentinels": ["h:0"]}, "dbs": DBS}, "redis.sentinel.sentinels", "host:port"),
        ({"sentinel": {**SENTINEL, "sentinels": ["h:1", "h:1"]}, "dbs": DBS}, "redis.sentinel.sentinels", "twice"),
        ({"sentinel": {"sentinels": ["h:1"]}, "dbs": DBS}, "redis.sentinel.master_name", ""),
        ({"sentinel": SENTINEL, "dbs": DBS, "unix_socket": "/run/r.sock"}, "redis.unix_socket", "Sentinel"),
        ({"sentinel": SENTINEL, "dbs": DBS, "username": "superset"}, "redis.username", "no user name"),
        ({"sentinel": SENTINEL, "dbs": DBS, "tls": {"enabled": True}}, "redis.tls.enabled", "not supported"),
        ({"sentinel": SENTINEL}, "redis.dbs.async_events", "DB 0"),
        ({"sentinel": {**SENTINEL, "password_file": "secret"}, "dbs": DBS}, "redis.sentinel.password_file", "path"),
    ],
)
def test_bad_sentinel_settings_name_the_field_and_the_fix(
    make_settings: SettingsFactory, redis: dict[str, Any], location: str, words: str
) -> None:
    message = _error_of(make_settings, redis)
    assert location in message
    assert words in message


def test_sentinel_without_gaq_keeps_the_settings_dbs(make_settings: SettingsFactory) -> None:
    path = make_settings({"redis": {"password_file": "/run/keys/r", "sentinel": SENTINEL}})
    with pytest.raises(GlueError):
        load_settings(path)  # GAQ on by default: DB 4 refused
    path = make_settings(
        {"redis": {"password_file": "/run/keys/r", "sentinel": SENTINEL}, "global_async_queries": {"enabled": False}}
    )
    assert load_settings(path).redis.dbs.async_events == 4


def test_rendered_config_builds_sentinel_clients_without_a_secret(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    data_password, sentinel_password = tmp_path / "redis-pw", tmp_path / "sentinel-pw"
    data_password.write_text(AWKWARD_PASSWORD + "\n")
    sentinel_password.write_text(SENTINEL_PASSWORD + "\n")
    path = make_settings(
        {
            "redis": {
                "password_file": str(data_password),
                "dbs": DBS,
                "sentinel": {
                    **SENTINEL,
                    "sentinels": ["127.0.0.1:26379", "[::1]:26380"],
                    "password_file": str(sentinel_password),
                },
            }
        }
    )
    text = render_config(load_settings(path))
    assert AWKWARD_PASSWORD not in text and SENTINEL_PASSWORD not in text
    namespace: dict[str, Any] = {"__file__": str(tmp_path / "superset_config.py")}
    exec(compile(text, "superset_config.py", "exec"), namespace)  # noqa: S102 - our own rendered config
    celery = namespace["CeleryConfig"]
    assert celery.broker_url.count("sentinel://") == 2 and "[::1]:26380/5" in celery.broker_url
    assert celery.result_backend.endswith("@[::1]:26380/1")
    assert celery.broker_transport_options["master_name"] == "superset-ha"
    assert celery.broker_transport_options["visibility_timeout"] >= 3600  # kept
    # The Sentinels get their own password, never the data nodes' (kombu, Celery, limits, every client).
    sentinel_kwargs = celery.broker_transport_options["sentinel_kwargs"]
    assert sentinel_kwargs["password"] == SENTINEL_PASSWORD
    assert celery.result_backend_transport_options["sentinel_kwargs"] is sentinel_kwargs
    assert namespace["RATELIMIT_STORAGE_URI"] == "redis+sentinel://127.0.0.1:26379,[::1]:26380/superset-ha"
    limits = namespace["RATELIMIT_STORAGE_OPTIONS"]
    assert (limits["sentinel_kwargs"], limits["use_replicas"], limits["db"]) == (sentinel_kwargs, False, 2)
    for key, db in (("CACHE_CONFIG", 2), ("DATA_CACHE_CONFIG", 3)):
        cache = namespace[key]
        assert cache["CACHE_TYPE"] == "superset_async_glue.sentinel_cache.MasterSentinelCache"
        assert (cache["CACHE_REDIS_DB"], cache["CACHE_REDIS_SENTINEL_PASSWORD"]) == (db, SENTINEL_PASSWORD)
    gaq = namespace["GLOBAL_ASYNC_QUERIES_CACHE_BACKEND"]
    assert (gaq["CACHE_TYPE"], gaq["CACHE_REDIS_DB"]) == ("RedisSentinelCache", 0)
    pool = namespace["RESULTS_BACKEND"]._write_client.connection_pool
    assert (pool.service_name, pool.connection_kwargs["db"]) == ("superset-ha", 1)


def run_when_possible(client: SupersetClient, database_id: int, timeout: float) -> tuple[Any, float]:
    """An async query, submitted again while the stack refuses or fails it; (rows, seconds until success)."""
    started = time.monotonic()
    last: object = None
    while time.monotonic() - started < timeout:
        try:
            outcome = client.run_async(database_id, CITIES, timeout=timeout)
        except SupersetApiError as err:
            last = err
            time.sleep(0.25)
            continue
        if outcome.state == "success":
            return outcome.rows, time.monotonic() - started
        last = outcome
        time.sleep(0.25)
    pytest.fail(f"no async query succeeded within {timeout:.0f}s; last: {last}")


def test_master_killed_sentinel_promotes_the_replica_and_queries_go_on(tmp_path: Path) -> None:
    started = time.monotonic()
    with sentinel_cluster(tmp_path / "sentinel") as cluster:
        overrides = {
            "redis": {
                "password_file": str(cluster.password_file),
                "dbs": DBS,
                "sentinel": {
                    "master_name": MASTER_NAME,
                    "sentinels": cluster.sentinels,
                    "password_file": str(cluster.sentinel_password_file),
                },
            }
        }
        cluster_up = time.monotonic() - started
        with start_stack(tmp_path / "stack", overrides) as stack:
            stack_up = time.monotonic() - started - cluster_up
            assert "redis" not in stack.processes(), "with redis.sentinel the runner must start no Redis"
            client = SupersetClient(stack.web_url, stack.admin_username, stack.admin_password())
            database_id = client.database_id(stack.clickhouse_database_name)
            before = client.run_async(database_id, CITIES)
            assert (before.state, before.rows) == ("success", [[8]]), before
            results_key = client.query(before.query_id)["results_key"]
            pids = stack.processes()
            cluster.wait_for_quorum()
            old_master = cluster.current_master()
            assert old_master == ("127.0.0.1", cluster.data_ports[0])

            promoted: list[float] = []
            killed = time.monotonic()
            cluster.kill(old_master[1])
            watcher = threading.Thread(
                target=lambda: promoted.append(
                    wait_until(
                        "the Sentinels promote the replica",
                        lambda: cluster.current_master() == ("127.0.0.1", cluster.data_ports[1]),
                        30,
                    )
                ),
                daemon=True,
            )
            watcher.start()
            # Queries are submitted from the kill on: the outage is until the first one succeeds.
            rows, _ = run_when_possible(client, database_id, timeout=60)
            outage = time.monotonic() - killed
            watcher.join(35)
            assert promoted, "the Sentinels promoted no replica within 30 s"
            assert rows == [[8]]
            assert stack.processes() == pids, "web, worker or beat was restarted"
            # Results stored before the kill were replicated: still there, read through the new master.
            assert client.results(results_key) == (before.columns, before.rows)

            # Check 9 includes GAQ chart data: written by the worker, read through the Sentinel data cache
            # (from the master) and announced on the GAQ stream (DB 0), all after the failover.
            checked = time.monotonic()
            verify = run_cli("verify", "--state-dir", str(stack.state_dir), "--json", timeout=180)
            report = json.loads(verify.stdout)
            assert verify.code == 0, verify.stdout
            redis_check = next(c for c in report["checks"] if c["key"] == "redis_ping")
            assert redis_check["status"] == "pass", redis_check
            assert f"is 127.0.0.1:{cluster.data_ports[1]} (3 of 3 Sentinels)" in redis_check["reason"], redis_check
            end_to_end = next(c for c in report["checks"] if c["key"] == "end_to_end")
            assert end_to_end["status"] == "pass" and "GAQ" in end_to_end["reason"], end_to_end
            print(
                f"\nSentinel failover: master SIGKILLed; replica promoted after {promoted[0]:.1f}s; first async query"
                f" succeeded {outage:.1f}s after the kill (same web/worker/beat pids)"
                f"\nverify ({time.monotonic() - checked:.1f}s): {redis_check['reason']}"
                f"\ncheck 9: {end_to_end['reason']}"
                f"\nphases: cluster {cluster_up:.1f}s, stack up {stack_up:.1f}s"
            )


def _redis_verdict(make_settings: SettingsFactory, tmp_path: Path, sentinel: dict[str, Any], password: Path) -> Any:
    """verify's check 2, gathered from real Sentinels through a config rendered for `sentinel`."""
    path = make_settings({"redis": {"password_file": str(password), "dbs": DBS, "sentinel": sentinel}})
    settings = load_settings(path)
    config = tmp_path / f"superset_config_{abs(hash(json.dumps(sentinel)))}.py"
    config.write_text(render_config(settings))
    target = load_target(VerifyOptions(path, config), settings)
    return judge_redis_ping(redis_facts(target))


def test_verify_names_the_master_and_tells_dead_or_ignorant_sentinels_apart(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    with sentinel_cluster(tmp_path / "sentinel") as cluster:
        base = {
            "master_name": MASTER_NAME,
            "sentinels": cluster.sentinels,
            "password_file": str(cluster.sentinel_password_file),
        }
        dead = [f"127.0.0.1:{free_port()}" for _ in range(2)]
        ok = _redis_verdict(make_settings, tmp_path, base, cluster.password_file)
        assert ok.status is Status.PASS, ok
        assert f"master {MASTER_NAME!r} is 127.0.0.1:{cluster.data_ports[0]} (3 of 3 Sentinels)" in ok.reason
        assert "PONG from 6 clients" in ok.reason

        one_dead = _redis_verdict(
            make_settings, tmp_path, {**base, "sentinels": [*cluster.sentinels, dead[0]]}, cluster.password_file
        )
        assert (one_dead.status, one_dead.modes) == (Status.WARN, (dx.SENTINEL_UNREACHABLE,)), one_dead
        assert "(3 of 4 Sentinels)" in one_dead.reason and dead[0] in one_dead.reason

        all_dead = _redis_verdict(make_settings, tmp_path, {**base, "sentinels": dead}, cluster.password_file)
        assert (all_dead.status, all_dead.modes) == (Status.FAIL, (dx.SENTINEL_UNREACHABLE,)), all_dead

        wrong_password = _redis_verdict(
            make_settings, tmp_path, {**base, "password_file": str(cluster.password_file)}, cluster.password_file
        )
        assert (wrong_password.status, wrong_password.modes) == (Status.FAIL, (dx.SENTINEL_UNREACHABLE,))
        assert "AuthenticationError" in wrong_password.reason, wrong_password

        unknown = _redis_verdict(
            make_settings, tmp_path, {**base, "master_name": "not-monitored"}, cluster.password_file
        )
        assert (unknown.status, unknown.modes) == (Status.FAIL, (dx.SENTINEL_NO_MASTER,)), unknown
        assert AWKWARD_PASSWORD not in str(ok) + str(unknown) + str(wrong_password)
