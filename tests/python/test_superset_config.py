"""The rendered superset_config.py, loaded by real Superset 6.1 against a real Redis, does what the settings say."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fixtures.common import run_cli
from fixtures.redis_server import RedisServer, TLSRedisServer

# Runs inside a fresh interpreter: builds the real app and reports what Superset made of the config.
PROBE = r"""
import json
from superset.app import create_app
app = create_app()
with app.app_context():
    from superset.extensions import async_query_manager, cache_manager, celery_app, feature_flag_manager
    import superset.sql_lab  # registers sql_lab.get_sql_results, as a worker does
    c = app.config
    task = celery_app.tasks["sql_lab.get_sql_results"]
    # Round trips through each configured client: the URLs must really reach Redis.
    c["RESULTS_BACKEND"].set("probe-results", "r")
    cache_manager.cache.set("probe-cache", "c")
    cache_manager.data_cache.set("probe-data", "d")
    async_query_manager._cache.set("probe-gaq", "g")
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)
        conn.default_channel.client.set("probe-broker", "b")
    celery_app.backend.set("probe-celery-result", "r")  # Celery's own result backend client
    # The web as a browser behind the TLS proxy sees it: HSTS, cookies, and the login rate limit.
    web = app.test_client()
    app.config["WTF_CSRF_ENABLED"] = False  # each POST reaches the limiter (a CSRF refusal comes first)
    login_page = web.get("/login/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"})
    login_posts = [
        web.post("/login/", data={"username": "nobody", "password": "x"}, headers={"X-Forwarded-For": "203.0.113.7"})
        .status_code
        for _ in range(4)
    ]
    other_client = web.post("/login/", data={"username": "n"}, headers={"X-Forwarded-For": "198.51.100.9"}).status_code
    print("PROBE" + json.dumps({
        "hsts": login_page.headers.get("Strict-Transport-Security"),
        "session_cookie": [h for h in login_page.headers.getlist("Set-Cookie") if h.startswith("session=")],
        "login_posts": login_posts,
        "other_client": other_client,
        "session_cookie_secure": c["SESSION_COOKIE_SECURE"],
        "gaq_cookie_secure": c["GLOBAL_ASYNC_QUERIES_JWT_COOKIE_SECURE"],
        "proxy_fix": c["ENABLE_PROXY_FIX"],
        "report_links": c["WEBDRIVER_BASEURL_USER_FRIENDLY"],
        "mapbox_key": c.get("MAPBOX_API_KEY"),
        "broker_url": celery_app.conf.broker_url,
        "result_backend": celery_app.conf.result_backend,
        "imports": list(celery_app.conf.imports),
        "beat": {k: [v["task"], str(v["schedule"])] for k, v in celery_app.conf.beat_schedule.items()},
        "soft_time_limit": task.soft_time_limit,
        "acks_late": task.acks_late,
        "reject_on_worker_lost": task.reject_on_worker_lost,
        "prefetch": celery_app.conf.worker_prefetch_multiplier,
        "visibility_timeout": celery_app.conf.broker_transport_options.get("visibility_timeout"),
        "lost_task_handler": any(
            r is app.extensions["superset_async_lost_task_handler"]
            for r in __import__("celery.signals", fromlist=["x"]).task_failure._live_receivers(None)
        ),
        "running_timeout": app.extensions["superset_async_pending_watchdog"].running_timeout_seconds,
        "time_limit": task.time_limit,
        "results_backend": type(c["RESULTS_BACKEND"]).__name__,
        "cache_type": c["CACHE_CONFIG"]["CACHE_TYPE"],
        "data_cache_type": c["DATA_CACHE_CONFIG"]["CACHE_TYPE"],
        "gaq_enabled": feature_flag_manager.is_feature_enabled("GLOBAL_ASYNC_QUERIES"),
        "persistence": feature_flag_manager.is_feature_enabled("SQLLAB_BACKEND_PERSISTENCE"),
        "custom_flag": feature_flag_manager.is_feature_enabled("DATASET_FOLDERS"),
        "gaq_backend": type(async_query_manager._cache).__name__,
        "gaq_transport": c["GLOBAL_ASYNC_QUERIES_TRANSPORT"],
        "gaq_delay": c["GLOBAL_ASYNC_QUERIES_POLLING_DELAY"],
        "gaq_secret_len": len(c["GLOBAL_ASYNC_QUERIES_JWT_SECRET"]),
        "sqllab_timeout": c["SQLLAB_TIMEOUT"],
        "sqllab_async_limit": c["SQLLAB_ASYNC_TIME_LIMIT_SEC"],
        "webserver_timeout": c["SUPERSET_WEBSERVER_TIMEOUT"],
        "metadata_uri": c["SQLALCHEMY_DATABASE_URI"],
    }))
"""


def probe(config: Path, state: Path) -> dict[str, Any]:
    state.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SUPERSET_CONFIG_PATH": str(config), "SUPERSET_HOME": str(state)}
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("PROBE"))
    result: dict[str, Any] = json.loads(line.removeprefix("PROBE"))
    return result


@pytest.fixture(scope="module")
def loaded(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from fixtures.common import deep_merge, write_secret  # noqa: PLC0415

    tmp = tmp_path_factory.mktemp("superset-config")
    settings = deep_merge(
        {
            "state_dir": str(tmp / "state"),
            "secret_key_file": str(write_secret(tmp / "sk")),
            "global_async_queries": {"jwt_secret_file": str(write_secret(tmp / "jwt")), "polling_delay_ms": 750},
        },
        {
            "redis": {
                "port": redis_server.port,
                "password_file": str(redis_server.password_file),
                "dbs": {"broker": 5, "results": 6, "cache": 7, "data_cache": 8, "async_events": 9},
            },
            "sql_lab": {"timeout_seconds": 120, "async_time_limit_seconds": 240, "hard_time_limit_grace_seconds": 30},
            "web": {
                "timeout_seconds": 150,
                "public_url": "https://superset.example.org/",
                "login_rate_limit": "3 per minute",
            },
            "feature_flags": {"DATASET_FOLDERS": True},
            "secret_files": {"MAPBOX_API_KEY": str(write_secret(tmp / "mapbox", MAPBOX_KEY))},
        },
    )
    path = tmp / "settings.json"
    path.write_text(json.dumps(settings))
    config = tmp / "superset_config.py"
    assert run_cli("render", "--settings", str(path), "--output", str(config)).code == 0
    assert MAPBOX_KEY not in config.read_text()
    return {"probe": probe(config, tmp / "state"), "state": str(tmp / "state")}


MAPBOX_KEY = "pk.mapbox-secret-from-a-file"


def test_public_url_secures_cookies_trusts_one_proxy_and_sends_hsts(loaded: dict[str, Any]) -> None:
    p = loaded["probe"]
    assert (p["session_cookie_secure"], p["gaq_cookie_secure"], p["proxy_fix"]) == (True, True, True)
    assert p["hsts"] == "max-age=31556926; includeSubDomains"  # flask-talisman's one year, through ProxyFix
    assert p["session_cookie"] and all("; Secure" in h for h in p["session_cookie"]), p["session_cookie"]
    assert p["report_links"] == "https://superset.example.org/"


def test_login_posts_are_rate_limited_per_client_with_counters_in_redis(
    loaded: dict[str, Any], redis_server: RedisServer
) -> None:
    p = loaded["probe"]
    # 3 per minute: the fourth POST from one address is refused; another address still gets through.
    assert p["login_posts"][:3] != [429] * 3 and p["login_posts"][3] == 429, p["login_posts"]
    assert p["other_client"] != 429
    # Counted in Redis (the cache DB), so every gunicorn worker shares the count.
    assert list(redis_server.client(7).keys("*superset_ratelimit*")), "no limiter key in the cache DB"


def test_secret_files_reach_superset_config_and_stay_out_of_the_file(loaded: dict[str, Any]) -> None:
    assert loaded["probe"]["mapbox_key"] == MAPBOX_KEY


def test_celery_broker_backend_imports_and_beat(loaded: dict[str, Any], redis_server: RedisServer) -> None:
    p = loaded["probe"]
    assert p["broker_url"] == f"redis://:p%40ss%2Fw%3Ard%3F%23%25%2B%20%26x@127.0.0.1:{redis_server.port}/5"
    assert p["result_backend"].endswith(f"@127.0.0.1:{redis_server.port}/6")
    assert "superset.sql_lab" in p["imports"]
    assert p["beat"]["reports.scheduler"][0] == "reports.scheduler"
    assert "<crontab: * * * * *" in p["beat"]["reports.scheduler"][1]  # every minute
    assert "<crontab: 0 0 * * *" in p["beat"]["reports.prune_log"][1]  # daily


def test_sql_lab_time_limit_is_on_the_task_itself(loaded: dict[str, Any]) -> None:
    # 6.1.0's decorator says soft_time_limit=21600; the annotation must win
    assert (loaded["probe"]["soft_time_limit"], loaded["probe"]["time_limit"]) == (240, 270)
    assert loaded["probe"]["sqllab_async_limit"] == 240
    assert loaded["probe"]["sqllab_timeout"] == 120
    assert loaded["probe"]["webserver_timeout"] == 150


def test_lost_worker_settings_reach_celery_and_the_watchdog(loaded: dict[str, Any]) -> None:
    p = loaded["probe"]
    # Defaults: no re-delivery (a lost query ends failed), one message per worker process.
    assert (p["acks_late"], p["reject_on_worker_lost"], p["prefetch"]) == (False, False, 1)
    # 2 x the 270 s hard limit + 600 s is below kombu's 3600 s, which stays.
    assert p["visibility_timeout"] == 3600
    # The lost-task handler is connected to task_failure in the app's process (a worker's main one
    # sends it); the running sweep waits the hard limit (270 s) plus the default 60 s grace.
    assert p["lost_task_handler"] is True
    assert p["running_timeout"] == 330


def test_caches_results_and_gaq(loaded: dict[str, Any]) -> None:
    p = loaded["probe"]
    assert (p["results_backend"], p["cache_type"], p["data_cache_type"]) == ("RedisCache", "RedisCache", "RedisCache")
    assert (p["gaq_backend"], p["gaq_transport"], p["gaq_delay"]) == ("RedisCacheBackend", "polling", 750)
    assert p["gaq_secret_len"] >= 32  # Superset's own start-up check passed: the app was created


def test_feature_flags_ours_and_free_form(loaded: dict[str, Any]) -> None:
    p = loaded["probe"]
    assert p["gaq_enabled"] and p["persistence"] and p["custom_flag"]
    assert p["metadata_uri"] == f"sqlite:///{loaded['state']}/superset.db"


def test_each_role_landed_in_its_own_redis_db(loaded: dict[str, Any], redis_server: RedisServer) -> None:
    def keys(db: int) -> set[str]:
        return {k.decode() for k in redis_server.client(db).keys("*probe*")}

    assert keys(5) == {"probe-broker"}
    assert keys(6) == {"superset_resultsprobe-results", "probe-celery-result"}
    assert keys(7) == {"superset_cache_probe-cache"}
    assert keys(8) == {"superset_data_probe-data"}
    assert keys(9) == {"probe-gaq"}


def test_every_client_reaches_a_tls_only_redis(tls_redis_server: TLSRedisServer, tmp_path: Path) -> None:
    """redis.tls: kombu, Celery's result backend, cachelib, flask-caching and GAQ all speak TLS."""
    from fixtures.common import write_secret  # noqa: PLC0415

    settings = tmp_path / "settings.json"
    settings.write_text(
        json.dumps(
            {
                "state_dir": str(tmp_path / "state"),
                "secret_key_file": str(write_secret(tmp_path / "sk")),
                "global_async_queries": {"jwt_secret_file": str(write_secret(tmp_path / "jwt"))},
                "redis": {
                    "port": tls_redis_server.port,
                    "tls": {"enabled": True, "ca_file": str(tls_redis_server.ca_file)},
                },
            }
        )
    )
    config = tmp_path / "superset_config.py"
    assert run_cli("render", "--settings", str(settings), "--output", str(config)).code == 0
    p = probe(config, tmp_path / "state")  # every round trip of PROBE went over TLS, or it fails
    assert p["broker_url"] == f"rediss://127.0.0.1:{tls_redis_server.port}/0"
    assert p["gaq_backend"] == "RedisCacheBackend"
    # Without web.public_url: plain-HTTP defaults, no proxy headers trusted; the limiter speaks TLS too.
    assert (p["session_cookie_secure"], p["gaq_cookie_secure"], p["proxy_fix"]) == (False, False, False)
    assert p["login_posts"][-1] != 429  # 20 per minute by default
