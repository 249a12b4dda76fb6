"""Every verdict of `superset-async verify`, from hand-written facts (verify/judge.py): no stack, milliseconds.

Each row is facts in, status and failure modes out. The end-to-end fault tests (test_verify.py) show
that the gather layer finds these facts on real stacks; this table shows what each verdict makes of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from superset_async_glue.verify import diagnosis as dx
from superset_async_glue.verify import judge
from superset_async_glue.verify.facts import (
    UNKNOWN_DB,
    BeatFacts,
    ConfigFacts,
    EndToEndFacts,
    FlowerFacts,
    Persistence,
    Ping,
    PlatformView,
    RedisFacts,
    RoleView,
    RoundTripFacts,
    SentinelAnswer,
    SentinelFacts,
    ServiceFacts,
    Step,
    WebEnvFacts,
    Worker,
    WorkerSurvey,
)
from superset_async_glue.verify.model import (
    BEAT,
    CHECKS,
    OPTIONAL_CHECKS,
    REDIS_PING,
    WEB_REDIS,
    CheckResult,
    Status,
    VerifyReport,
    failed,
    passed,
)
from superset_async_glue.verify.report import as_dict, remedy_of
from superset_async_glue.verify.reports_check import judge_reports
from test_verify_reports import CASES as REPORTS_CASES

PASS, WARN, FAIL, SKIP = Status.PASS, Status.WARN, Status.FAIL, Status.SKIPPED
BROKER = ("127.0.0.1:6379", 0)
RESULTS = ("127.0.0.1:6379", 1)
CONFIG = "/etc/superset-async/superset_config.py"


# -- facts of a healthy local stack, and one change per row ------------------------------------------------


def roles(**state: bool) -> dict[str, RoleView]:
    names = ("redis", "clickhouse", "web", "worker", "beat")
    return {
        n: RoleView(n, True, state.get(n, True), "running" if state.get(n, True) else "exited (1)", (100,))
        for n in names
    }


LOCAL = PlatformView("local", "run/stack.json", roles())
NOTHING = PlatformView("none", "", {}, "found neither run/stack.json (local runner) nor superset-async-* systemd units")
SYSTEMD_NO_WEB = PlatformView(
    "systemd",
    "systemctl",
    {
        "web": RoleView("web", False, False, "no unit on this host"),
        "worker": RoleView("worker", True, True, "active (running)"),
    },
)


def pings(**broken: str) -> tuple[Ping, ...]:
    layout = [
        ("broker", "CELERY_CONFIG.broker_url", 0),
        ("results", "CELERY_CONFIG.result_backend", 1),
        ("results", "RESULTS_BACKEND", 1),
        ("cache", "CACHE_CONFIG", 2),
        ("data_cache", "DATA_CACHE_CONFIG", 3),
        ("async_events", "GLOBAL_ASYNC_QUERIES_CACHE_BACKEND", 4),
    ]
    return tuple(
        Ping(role, client, "127.0.0.1:6379", db, role not in broken, 0.002, broken.get(role))
        for role, client, db in layout
    )


DBS = {"broker": 0, "results": 1, "cache": 2, "data_cache": 3, "async_events": 4}
CACHES = {
    "CACHE_CONFIG": "RedisCache",
    "DATA_CACHE_CONFIG": "RedisCache",
    "GLOBAL_ASYNC_QUERIES_CACHE_BACKEND": "RedisCache",
}
REDIS = RedisFacts(None, pings(), DBS, CACHES, gaq_enabled=True)
SENTINELS = ("10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379")


def sentinel(*masters: str | None, errors: tuple[int, ...] = ()) -> SentinelFacts:
    """The Sentinels' answers: the master each names (None: none), `errors` the ones that did not answer."""
    return SentinelFacts(
        "superset",
        tuple(
            SentinelAnswer(s, None, "ConnectionError: refused") if i in errors else SentinelAnswer(s, m)
            for i, (s, m) in enumerate(zip(SENTINELS, masters, strict=True))
        ),
    )


MASTER = "10.0.0.7:6379"
SENTINEL_CACHES = {
    "CACHE_CONFIG": "MasterSentinelCache",
    "DATA_CACHE_CONFIG": "MasterSentinelCache",
    "GLOBAL_ASYNC_QUERIES_CACHE_BACKEND": "RedisSentinelCache",
}
SENTINEL_REDIS = replace(REDIS, sentinel=sentinel(MASTER, MASTER, MASTER), cache_types=SENTINEL_CACHES)
WORKER = Worker(
    "celery@vm",
    ("celery",),
    sqllab_registered=True,
    soft_time_limit=300,
    pool="prefork",
    pid=200,
    broker=BROKER,
    result_backend=RESULTS,
    config_path=CONFIG,
    runs_web_config=True,
)
SURVEY = WorkerSurvey((WORKER,), "celery", BROKER, 0.03, web_config=CONFIG)
NO_WORKERS = WorkerSurvey((), "celery", BROKER, 1.0)
BEAT_OK = BeatFacts(
    LOCAL, (300,), True, {"reports.scheduler": "reports.scheduler", "reports.prune_log": "reports.prune_log"}
)
CONFIG_OK = ConfigFacts(
    load_error=None,
    web_import_error=None,
    import_seconds=0.4,
    results_backend="RedisCache",
    celery_result_backend=True,
    feature_flags={"GLOBAL_ASYNC_QUERIES": True, "SQLLAB_BACKEND_PERSISTENCE": True},
    gaq_secret_bytes=48,
    gaq_cache_type="RedisCache",
    data_cache_type="RedisCache",
    sqllab_annotation={"soft_time_limit": 300, "time_limit": 360},
    metadata_uri="sqlite:////var/lib/superset-async/superset.db",
    wanted_flags={"GLOBAL_ASYNC_QUERIES": True, "SQLLAB_BACKEND_PERSISTENCE": True},
    wanted_time_limit=300,
    wanted_metadata_uri="sqlite:////var/lib/superset-async/superset.db",
    worker_pools=(("celery@vm", "prefork"),),
)
WEB_OK = WebEnvFacts(
    "/nix/store/env/bin/python3",
    "beside the web's gunicorn (pid 1)",
    versions={"kombu": "5.6.2", "redis": "5.3.1", "celery": "5.6.3"},
    publish_ok=True,
    publish_ms=4.0,
)
ROUND_TRIP_OK = RoundTripFacts(SURVEY, RESULTS, True, came_back=True, seconds=0.05)
FORM_OK = Step("form login", True, 0.4, "POST /login/ with its CSRF token -> 302 to /, logged in as 'admin'")
API_OK = Step("REST API login", True, 0.4, "logged in")
QUERY_OK = Step("'ClickHouse (demo)'", True, 0.3, "async query 1 -> 1 row(s) in 0.30s", (), 1)
GAQ_OK = Step("GAQ chart data", True, 0.2, "202 job -> event done -> 1 row(s)")
GAQ_UNREADABLE = "superset-async: global_async_queries.jwt_secret_file: cannot read secret file /s: No such file"
E2E_OK = EndToEndFacts(form=FORM_OK, api_login=API_OK, steps=(QUERY_OK, GAQ_OK))

Judge = Callable[[Any], CheckResult]
# (id, verdict, facts, status, failure modes in order, a text the reason holds)
FLOWER_OK = FlowerFacts("http://127.0.0.1:5555/", "200", ("celery@a",), "200", ("celery@a",))

CASES: list[tuple[str, Judge, Any, Status, tuple[str, ...], str]] = [
    # 1 services
    ("services-up", judge.judge_services, ServiceFacts(LOCAL, "200"), PASS, (), "web /health 200"),
    (
        "services-no-stack",
        judge.judge_services,
        ServiceFacts(NOTHING, "unreachable"),
        FAIL,
        (dx.SERVICE_DOWN,),
        "found neither",
    ),
    (
        "services-redis-down",
        judge.judge_services,
        ServiceFacts(replace(LOCAL, roles=roles(redis=False)), "200"),
        FAIL,
        (dx.BROKER_UNREACHABLE,),
        "redis exited",
    ),
    (
        "services-worker-down",
        judge.judge_services,
        ServiceFacts(replace(LOCAL, roles=roles(worker=False)), "200"),
        FAIL,
        (dx.NO_WORKER,),
        "worker exited",
    ),
    (
        "services-beat-down",
        judge.judge_services,
        ServiceFacts(replace(LOCAL, roles=roles(beat=False)), "200"),
        FAIL,
        (dx.BEAT_MISSING,),
        "beat exited",
    ),
    (
        "services-clickhouse-down",
        judge.judge_services,
        ServiceFacts(replace(LOCAL, roles=roles(clickhouse=False)), "200"),
        FAIL,
        (dx.SERVICE_DOWN,),
        "clickhouse exited",
    ),
    (
        "services-web-unhealthy",
        judge.judge_services,
        ServiceFacts(LOCAL, "503"),
        FAIL,
        (dx.WEB_DOWN,),
        "web /health: 503",
    ),
    (
        "services-web-down",
        judge.judge_services,
        ServiceFacts(replace(LOCAL, roles=roles(web=False)), "unreachable (ConnectionError)"),
        FAIL,
        (dx.WEB_DOWN,),
        "web exited",
    ),
    (
        "services-web-elsewhere",
        judge.judge_services,
        ServiceFacts(SYSTEMD_NO_WEB, "unreachable (ConnectionError)"),
        PASS,
        (),
        "not on this host: web",
    ),
    (
        "services-other-config",
        judge.judge_services,
        ServiceFacts(replace(LOCAL, problem="the stack runs with /a, verify was given /b"), "200"),
        WARN,
        (dx.CONFIG_DRIFT,),
        "verify was given /b",
    ),
    # 2 Redis PING
    ("ping-all", judge.judge_redis_ping, REDIS, PASS, (), "PONG from 6 clients"),
    ("ping-no-config", judge.judge_redis_ping, RedisFacts("SecretFileError: x"), SKIP, (), "check 6"),
    (
        "ping-broker-down",
        judge.judge_redis_ping,
        replace(REDIS, pings=pings(broker="ConnectionError: refused")),
        FAIL,
        (dx.BROKER_UNREACHABLE,),
        "1 of 6 clients",
    ),
    (
        "ping-cache-down",
        judge.judge_redis_ping,
        replace(REDIS, pings=pings(cache="AuthenticationError: x")),
        FAIL,
        (dx.REDIS_UNREACHABLE,),
        "cache (CACHE_CONFIG)",
    ),
    (
        "ping-broker-aof",
        judge.judge_redis_ping,
        replace(REDIS, broker_persistence=Persistence(aof=True, rdb=True)),
        PASS,
        (),
        "broker persists with AOF and RDB",
    ),
    (
        "ping-broker-rdb-only",
        judge.judge_redis_ping,
        replace(REDIS, broker_persistence=Persistence(rdb=True)),
        PASS,
        (),
        "broker persists with RDB",
    ),
    (
        "ping-broker-not-persistent",
        judge.judge_redis_ping,
        replace(REDIS, broker_persistence=Persistence()),
        WARN,
        (dx.REDIS_NOT_PERSISTENT,),
        "persists nothing (appendonly no",
    ),
    (
        "ping-broker-persistence-refused",
        judge.judge_redis_ping,
        replace(REDIS, broker_persistence=Persistence(unknown="NoPermissionError: no permissions to run 'config'")),
        PASS,
        (),
        "broker persistence unknown (NoPermissionError",
    ),
    # 2 with Sentinel: the master the Sentinels name, then the PINGs
    (
        "ping-sentinel",
        judge.judge_redis_ping,
        SENTINEL_REDIS,
        PASS,
        (),
        "master 'superset' is 10.0.0.7:6379 (3 of 3 Sentinels); PONG from 6 clients",
    ),
    (
        "ping-sentinel-failover-in-progress",
        judge.judge_redis_ping,
        replace(SENTINEL_REDIS, sentinel=sentinel(MASTER, MASTER, "10.0.0.8:6379")),
        PASS,
        (),
        "2 of 3 Sentinels), others name 10.0.0.8:6379",
    ),
    (
        "ping-sentinel-one-silent",
        judge.judge_redis_ping,
        replace(SENTINEL_REDIS, sentinel=sentinel(MASTER, MASTER, None, errors=(2,))),
        WARN,
        (dx.SENTINEL_UNREACHABLE,),
        "1 Sentinel(s) did not answer (10.0.0.3:26379: ConnectionError: refused)",
    ),
    (
        "ping-sentinel-none-answers",
        judge.judge_redis_ping,
        replace(
            SENTINEL_REDIS,
            sentinel=sentinel(None, None, None, errors=(0, 1, 2)),
            pings=pings(broker="MasterNotFoundError: x", cache="MasterNotFoundError: x"),
        ),
        FAIL,
        (dx.SENTINEL_UNREACHABLE,),
        "no Sentinel answered (10.0.0.1:26379: ConnectionError: refused;",
    ),
    (
        "ping-sentinel-no-master",
        judge.judge_redis_ping,
        replace(SENTINEL_REDIS, sentinel=sentinel(None, None, None), pings=pings(broker="MasterNotFoundError: x")),
        FAIL,
        (dx.SENTINEL_NO_MASTER,),
        "the Sentinels (10.0.0.1:26379, 10.0.0.2:26379, 10.0.0.3:26379) know no master named 'superset'",
    ),
    (
        "ping-sentinel-master-down",
        judge.judge_redis_ping,
        replace(SENTINEL_REDIS, pings=pings(broker="ConnectionError: refused")),
        FAIL,
        (dx.BROKER_UNREACHABLE,),
        "master 'superset' is 10.0.0.7:6379 (3 of 3 Sentinels); 1 of 6 clients got no PONG",
    ),
    # 3 Redis roles
    ("roles-sentinel-caches", judge.judge_redis_roles, SENTINEL_REDIS, PASS, (), "one DB per role"),
    ("roles-distinct", judge.judge_redis_roles, REDIS, PASS, (), "one DB per role: broker 0, results 1"),
    ("roles-no-config", judge.judge_redis_roles, RedisFacts("SecretFileError: x"), SKIP, (), "check 6"),
    (
        "roles-shared",
        judge.judge_redis_roles,
        replace(REDIS, pings=tuple(replace(p, db=0) if p.role == "cache" else p for p in pings())),
        FAIL,
        (dx.REDIS_ROLES_SHARED,),
        "roles broker, cache share",
    ),
    (
        "roles-data-cache-not-redis",
        judge.judge_redis_roles,
        replace(REDIS, cache_types={**CACHES, "DATA_CACHE_CONFIG": "NullCache"}),
        FAIL,
        (dx.GAQ_BACKEND,),
        "DATA_CACHE_CONFIG is NullCache",
    ),
    (
        "roles-cache-not-redis",
        judge.judge_redis_roles,
        replace(REDIS, cache_types={**CACHES, "CACHE_CONFIG": "SimpleCache"}),
        FAIL,
        (dx.CONFIG_DRIFT,),
        "CACHE_CONFIG is SimpleCache",
    ),
    (
        "roles-other-db-than-settings",
        judge.judge_redis_roles,
        replace(REDIS, settings_dbs={**DBS, "cache": 7}),
        WARN,
        (dx.CONFIG_DRIFT,),
        "cache is DB 2 in the config, 7 in the settings",
    ),
    (
        "roles-unreachable-is-check-2s",
        judge.judge_redis_roles,
        replace(REDIS, pings=pings(cache="ConnectionError: x")),
        PASS,
        (),
        "one DB per role",
    ),
    # 4 workers
    ("workers-ok", judge.judge_workers, SURVEY, PASS, (), "1 worker(s) (celery@vm)"),
    ("workers-no-config", judge.judge_workers, replace(SURVEY, config_error="x"), SKIP, (), "check 6"),
    (
        "workers-broker-down",
        judge.judge_workers,
        replace(NO_WORKERS, error="broker unreachable: refused"),
        FAIL,
        (dx.BROKER_UNREACHABLE,),
        "cannot ask the workers",
    ),
    ("workers-none", judge.judge_workers, NO_WORKERS, FAIL, (dx.NO_WORKER,), "no worker answered a ping"),
    (
        "workers-hung",
        judge.judge_workers,
        replace(NO_WORKERS, listeners={0: 2}),
        FAIL,
        (dx.NO_WORKER,),
        "2 Redis connection(s) still subscribed",
    ),
    (
        "workers-other-db",
        judge.judge_workers,
        replace(NO_WORKERS, listeners={7: 2}, other_dbs={7: ["otherdb@vm"]}),
        FAIL,
        (dx.WORKER_OTHER_DB,),
        "DB 7: otherdb@vm",
    ),
    (
        "workers-other-db-and-hung",
        judge.judge_workers,
        replace(NO_WORKERS, listeners={0: 2, 7: 2}, other_dbs={7: ["w@vm"]}),
        FAIL,
        (dx.WORKER_OTHER_DB, dx.NO_WORKER),
        "DB 7: w@vm",
    ),
    (
        "workers-no-sqllab-task",
        judge.judge_workers,
        replace(SURVEY, workers=(replace(WORKER, sqllab_registered=False),)),
        FAIL,
        (dx.QUEUE_NOT_CONSUMED,),
        "has no sql_lab.get_sql_results",
    ),
    (
        "workers-queue-not-consumed",
        judge.judge_workers,
        replace(SURVEY, workers=(replace(WORKER, queues=("reports",)),)),
        FAIL,
        (dx.QUEUE_NOT_CONSUMED,),
        "no worker consumes queue 'celery'",
    ),
    (
        "workers-lane-consumed",
        judge.judge_workers,
        replace(
            SURVEY,
            workers=(WORKER, replace(WORKER, name="lane_interactive@vm", queues=("sql_lab_lane_interactive",))),
            lane_queues=("sql_lab_lane_interactive",),
        ),
        PASS,
        (),
        "consume 'celery', 'sql_lab_lane_interactive' on",
    ),
    (
        "workers-lane-not-consumed",
        judge.judge_workers,
        replace(SURVEY, lane_queues=("sql_lab_lane_interactive",)),
        FAIL,
        (dx.LANE_NOT_CONSUMED,),
        "no worker consumes SQL Lab lane queue 'sql_lab_lane_interactive'",
    ),
    (
        "workers-other-broker",
        judge.judge_workers,
        replace(SURVEY, workers=(replace(WORKER, broker=("127.0.0.1:6379", 7)),)),
        FAIL,
        (dx.WORKER_OTHER_DB,),
        "uses broker 127.0.0.1:6379/7",
    ),
    (
        "workers-socket-db-unknown",
        judge.judge_workers,
        replace(SURVEY, workers=(replace(WORKER, broker=("127.0.0.1:6379", UNKNOWN_DB)),)),
        PASS,
        (),
        "answer in",
    ),
    (
        "workers-other-config",
        judge.judge_workers,
        replace(SURVEY, workers=(replace(WORKER, config_path="/tmp/other.py", runs_web_config=False),)),
        WARN,
        (dx.METADATA_MISMATCH,),
        "runs /tmp/other.py",
    ),
    # 5 beat
    ("beat-one", judge.judge_beat, BEAT_OK, PASS, (), "exactly one beat (pid 300)"),
    ("beat-config-not-imported", judge.judge_beat, replace(BEAT_OK, schedule=None), PASS, (), "schedule: unknown"),
    (
        "beat-elsewhere",
        judge.judge_beat,
        replace(
            BEAT_OK,
            platform=replace(SYSTEMD_NO_WEB, roles={"beat": RoleView("beat", False, False, "no unit")}),
            pids=(),
        ),
        SKIP,
        (),
        "beat runs elsewhere",
    ),
    ("beat-disabled", judge.judge_beat, replace(BEAT_OK, enabled=False, pids=()), SKIP, (), "beat.enabled is false"),
    ("beat-missing", judge.judge_beat, replace(BEAT_OK, pids=()), FAIL, (dx.BEAT_MISSING,), "no celery beat process"),
    ("beat-twice", judge.judge_beat, replace(BEAT_OK, pids=(300, 301)), FAIL, (dx.BEAT_DUPLICATE,), "pids 300, 301"),
    (
        "beat-disabled-but-running",
        judge.judge_beat,
        replace(BEAT_OK, enabled=False),
        WARN,
        (dx.BEAT_DUPLICATE,),
        "although beat.enabled is false",
    ),
    (
        "beat-no-reports",
        judge.judge_beat,
        replace(BEAT_OK, schedule={"x": "reports.prune_log"}),
        FAIL,
        (dx.BEAT_MISSING,),
        "lacks reports.scheduler",
    ),
    # 6 config
    ("config-ok", judge.judge_config, CONFIG_OK, PASS, (), "soft_time_limit 300s"),
    (
        "config-gaq-secret-file",
        judge.judge_config,
        replace(
            CONFIG_OK,
            secret_problems=(
                (
                    "global_async_queries.jwt_secret_file: /s holds 16 bytes; at least 32",
                    "global_async_queries.jwt_secret_file",
                ),
            ),
        ),
        FAIL,
        (dx.GAQ_SECRET,),
        "holds 16 bytes",
    ),
    (
        "config-missing-gaq-file",
        judge.judge_config,
        replace(
            CONFIG_OK,
            load_error=f"SecretFileError: {GAQ_UNREADABLE}",
            web_import_error=f"superset_config.SecretFileError: {GAQ_UNREADABLE}",
        ),
        FAIL,
        (dx.GAQ_SECRET,),
        "does not import in verify",
    ),
    (
        "config-web-import-fails",
        judge.judge_config,
        replace(CONFIG_OK, web_import_error="ModuleNotFoundError: No module named 'cachelib'"),
        FAIL,
        (dx.CONFIG_BROKEN,),
        "in the web's interpreter",
    ),
    (
        "config-no-results-backend",
        judge.judge_config,
        replace(CONFIG_OK, results_backend=None),
        FAIL,
        (dx.RESULTS_BACKEND_MISSING,),
        "RESULTS_BACKEND is None",
    ),
    (
        "config-no-celery-result-backend",
        judge.judge_config,
        replace(CONFIG_OK, celery_result_backend=False),
        FAIL,
        (dx.RESULTS_BACKEND_MISSING,),
        "no result_backend",
    ),
    (
        "config-flag-differs",
        judge.judge_config,
        replace(CONFIG_OK, feature_flags={"GLOBAL_ASYNC_QUERIES": True, "SQLLAB_BACKEND_PERSISTENCE": False}),
        FAIL,
        (dx.CONFIG_BROKEN,),
        "SQLLAB_BACKEND_PERSISTENCE is False",
    ),
    (
        "config-flag-unset",
        judge.judge_config,
        replace(CONFIG_OK, feature_flags={"GLOBAL_ASYNC_QUERIES": True}),
        FAIL,
        (dx.CONFIG_BROKEN,),
        "not set by the config",
    ),
    (
        "config-gaq-secret-short",
        judge.judge_config,
        replace(CONFIG_OK, gaq_secret_bytes=16),
        FAIL,
        (dx.GAQ_SECRET,),
        "16 bytes",
    ),
    (
        "config-gaq-secret-default",
        judge.judge_config,
        replace(CONFIG_OK, gaq_secret_is_default=True),
        FAIL,
        (dx.GAQ_SECRET,),
        "(the default)",
    ),
    (
        "config-gaq-backend",
        judge.judge_config,
        replace(CONFIG_OK, gaq_cache_type="NullCache"),
        FAIL,
        (dx.GAQ_BACKEND,),
        "GLOBAL_ASYNC_QUERIES_CACHE_BACKEND is NullCache",
    ),
    (
        "config-no-annotation",
        judge.judge_config,
        replace(CONFIG_OK, sqllab_annotation={}),
        FAIL,
        (dx.TIME_LIMIT,),
        "soft_time_limit 21600s from the config",
    ),
    (
        "config-solo-pool",
        judge.judge_config,
        replace(CONFIG_OK, worker_pools=(("celery@vm", "solo"),)),
        FAIL,
        (dx.TIME_LIMIT,),
        "runs the solo pool",
    ),
    (
        "config-other-metadata",
        judge.judge_config,
        replace(CONFIG_OK, wanted_metadata_uri="postgresql://superset@db/superset"),
        WARN,
        (dx.CONFIG_DRIFT,),
        "the settings name postgresql",
    ),
    # 7 the web's environment
    ("web-publish", judge.judge_web_redis, WEB_OK, PASS, (), "published and consumed"),
    ("web-no-config", judge.judge_web_redis, replace(WEB_OK, config_error="x"), SKIP, (), "check 6"),
    (
        "web-no-probe",
        judge.judge_web_redis,
        WebEnvFacts("/bin/python3", "--web-python", failure="cannot run /bin/python3"),
        FAIL,
        (dx.CONFIG_BROKEN,),
        "cannot run",
    ),
    (
        "web-kombu-mismatch",
        judge.judge_web_redis,
        replace(
            WEB_OK,
            versions={"kombu": "5.7.0", "redis": "5.3.1"},
            publish_ok=False,
            error_type="kombu.exceptions.VersionMismatch",
            error_message="requires redis-py versions 6.1.0 or later",
        ),
        FAIL,
        (dx.KOMBU_MISMATCH,),
        "requires redis-py versions 6.1.0",
    ),
    (
        "web-kombu-mismatch-by-versions",
        judge.judge_web_redis,
        replace(WEB_OK, versions={"kombu": "5.7.1", "redis": "6.0.0"}),
        FAIL,
        (dx.KOMBU_MISMATCH,),
        "kombu >= 5.7 needs redis-py >= 6.1",
    ),
    (
        "web-broker-down",
        judge.judge_web_redis,
        replace(WEB_OK, publish_ok=False, error_type="kombu.exceptions.OperationalError", error_message="refused"),
        FAIL,
        (dx.BROKER_UNREACHABLE,),
        "OperationalError: refused",
    ),
    # 8 the worker's side
    ("round-trip", judge.judge_worker_redis, ROUND_TRIP_OK, PASS, (), "task round trip through 'celery'"),
    ("round-trip-no-worker", judge.judge_worker_redis, RoundTripFacts(NO_WORKERS, RESULTS, True), SKIP, (), "check 4"),
    ("round-trip-no-backend", judge.judge_worker_redis, RoundTripFacts(SURVEY, None, False), SKIP, (), "check 6"),
    (
        "round-trip-other-backend",
        judge.judge_worker_redis,
        replace(
            ROUND_TRIP_OK, survey=replace(SURVEY, workers=(replace(WORKER, result_backend=("127.0.0.1:6379", 9)),))
        ),
        FAIL,
        (dx.RESULTS_BACKEND_MISSING,),
        "stores results in 127.0.0.1:6379/9",
    ),
    (
        "round-trip-lost",
        judge.judge_worker_redis,
        replace(ROUND_TRIP_OK, came_back=False, answer="TimeoutError: x", seconds=5.0),
        FAIL,
        (dx.NO_WORKER,),
        "came back as 'TimeoutError: x'",
    ),
    # 9 end to end
    ("e2e-ok", judge.judge_end_to_end, E2E_OK, PASS, (), "async query 1 -> 1 row(s)"),
    ("e2e-no-query", judge.judge_end_to_end, EndToEndFacts(skip="--no-query: not run"), SKIP, (), "--no-query"),
    (
        "e2e-no-password-file",
        judge.judge_end_to_end,
        EndToEndFacts(login_error="cannot log in as 'admin': missing"),
        FAIL,
        (dx.ADMIN_LOGIN_REFUSED,),
        "cannot log in",
    ),
    (
        "e2e-password-refused",
        judge.judge_end_to_end,
        EndToEndFacts(
            form=replace(FORM_OK, ok=False, text="refused", modes=(dx.ADMIN_LOGIN_REFUSED,)),
            api_login=replace(API_OK, ok=False, text="HTTP 401", modes=(dx.ADMIN_LOGIN_REFUSED,)),
        ),
        FAIL,
        (dx.ADMIN_LOGIN_REFUSED,),
        "REST API login: HTTP 401",
    ),
    (
        "e2e-web-down",
        judge.judge_end_to_end,
        EndToEndFacts(
            form=replace(FORM_OK, ok=False, modes=(dx.WEB_DOWN,)),
            api_login=replace(API_OK, ok=False, modes=(dx.WEB_DOWN,)),
        ),
        FAIL,
        (dx.WEB_DOWN,),
        "REST API login",
    ),
    (
        "e2e-form-broken",
        judge.judge_end_to_end,
        replace(E2E_OK, form=replace(FORM_OK, ok=False, text="HTTP 500", modes=(dx.FORM_LOGIN_BROKEN,))),
        FAIL,
        (dx.FORM_LOGIN_BROKEN,),
        "(the REST API login works)",
    ),
    (
        "e2e-1035",
        judge.judge_end_to_end,
        replace(
            E2E_OK,
            steps=(
                replace(QUERY_OK, ok=False, text="1035", modes=(dx.BROKER_UNREACHABLE,)),
                replace(GAQ_OK, ok=False, text="not tried"),
            ),
        ),
        FAIL,
        (dx.BROKER_UNREACHABLE,),
        "GAQ chart data: not tried",
    ),
    (
        "e2e-pending",
        judge.judge_end_to_end,
        replace(E2E_OK, steps=(replace(QUERY_OK, ok=False, modes=(dx.METADATA_MISMATCH,)),)),
        FAIL,
        (dx.METADATA_MISMATCH,),
        "'ClickHouse (demo)'",
    ),
    (
        "e2e-unknown",
        judge.judge_end_to_end,
        replace(E2E_OK, steps=(replace(QUERY_OK, ok=False),)),
        FAIL,
        (dx.UNKNOWN,),
        "",
    ),
    # -- 10 Flower (only when flower.enabled) --
    ("flower-ok", judge.judge_flower, FLOWER_OK, PASS, (), "1 worker(s) online in /metrics (celery@a); API 200"),
    (
        "flower-down",
        judge.judge_flower,
        replace(FLOWER_OK, health="unreachable (ConnectionError)", online=(), api="not asked"),
        FAIL,
        (dx.FLOWER_DOWN,),
        "healthcheck: unreachable (ConnectionError)",
    ),
    ("flower-auth", judge.judge_flower, replace(FLOWER_OK, api="401"), FAIL, (dx.FLOWER_AUTH,), "(401)"),
    (
        "flower-blind",
        judge.judge_flower,
        replace(FLOWER_OK, online=()),
        FAIL,
        (dx.FLOWER_BLIND,),
        "Flower shows online: none; answering on the broker but not online in Flower: celery@a",
    ),
    (
        "flower-misses-one",
        judge.judge_flower,
        replace(FLOWER_OK, pinged=("celery@a", "celery@b")),
        FAIL,
        (dx.FLOWER_BLIND,),
        "not online in Flower: celery@b",
    ),
    (
        "flower-no-password",
        judge.judge_flower,
        replace(FLOWER_OK, api="not asked (no flower.password_file)"),
        PASS,
        (),
        "API not asked",
    ),
]


@pytest.mark.parametrize(
    ("verdict", "facts", "status", "modes", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_verdict(verdict: Judge, facts: Any, status: Status, modes: tuple[str, ...], text: str) -> None:
    result = verdict(facts)
    assert (result.status, result.modes) == (status, modes), result
    assert text in result.reason, result.reason
    remedy = remedy_of(result)
    if status in (FAIL, WARN):
        assert remedy == dx.MODES[modes[0]].fix  # the one table of remedies
    else:
        assert remedy is None


def test_every_check_has_rows_and_every_failure_mode_has_a_row_or_a_classifier() -> None:
    judged = {c[1](c[2]).spec.key for c in CASES} | {judge_reports(c[1]).spec.key for c in REPORTS_CASES}
    assert judged == {spec.key for spec in (*CHECKS, *OPTIONAL_CHECKS)}
    seen = {m for c in CASES for m in c[4]}
    seen |= {judge.query_error_mode("killed after 5 seconds")}  # time-limit from a query, below too
    seen |= {m for c in REPORTS_CASES for m in c[3]}  # check 11 (reports): its table is test_verify_reports.py
    assert set(dx.MODES) - seen == set(), "a failure mode no verdict in the table gives"


def test_a_config_error_is_reported_once_when_both_interpreters_see_it() -> None:
    facts = replace(
        CONFIG_OK, load_error="SecretFileError: same", web_import_error="superset_config.SecretFileError: same"
    )
    assert judge.judge_config(facts).reason.count("same") == 1


@pytest.mark.parametrize(("status", "mode"), [(None, dx.WEB_DOWN), (401, dx.ADMIN_LOGIN_REFUSED), (500, dx.UNKNOWN)])
def test_api_login_modes(status: int | None, mode: str) -> None:
    assert judge.api_login_mode(status) == mode


@pytest.mark.parametrize(
    ("status", "back", "messages", "modes"),
    [
        (500, False, (), (dx.FORM_LOGIN_BROKEN,)),
        (302, True, ("Invalid login. Please try again.",), (dx.ADMIN_LOGIN_REFUSED,)),
        (302, True, (), (dx.UNKNOWN,)),
        (200, False, (), (dx.UNKNOWN,)),
    ],
)
def test_form_login_modes(status: int, back: bool, messages: tuple[str, ...], modes: tuple[str, ...]) -> None:
    assert judge.form_login_modes(status, back, messages) == modes


@pytest.mark.parametrize(
    ("message", "codes", "mode"),
    [
        ("Failed to start remote query on a worker.", (1035,), dx.BROKER_UNREACHABLE),
        ("anything", (1035,), dx.BROKER_UNREACHABLE),
        ("Results backend is not configured.", (), dx.RESULTS_BACKEND_MISSING),
        ("Database not allowed", (), dx.UNKNOWN),
    ],
)
def test_submit_error_modes(message: str, codes: tuple[int, ...], mode: str) -> None:
    assert judge.submit_error_mode(message, codes, 1035) == mode


@pytest.mark.parametrize(
    ("error", "mode"),
    [
        ("Results backend is not configured.", dx.RESULTS_BACKEND_MISSING),
        ("The query was killed after 5 seconds.", dx.TIME_LIMIT),
        ("Syntax error", dx.UNKNOWN),
    ],
)
def test_query_error_modes(error: str, mode: str) -> None:
    assert judge.query_error_mode(error) == mode


def test_a_pending_query_names_whom_it_waits_for() -> None:
    assert judge.pending_modes(NO_WORKERS) == ((dx.NO_WORKER,), "no worker answers on the broker")
    elsewhere = replace(NO_WORKERS, listeners={7: 1}, other_dbs={7: ["w@vm"]})
    assert judge.pending_modes(elsewhere)[0] == (dx.WORKER_OTHER_DB,)


def _report(*results: CheckResult) -> list[str]:
    return [f.code for f in dx.diagnose(results)]


def test_1035_is_the_kombu_mismatch_when_redis_answers_and_the_broker_when_it_does_not() -> None:
    e2e = failed(CHECKS[-1], "1035", (dx.BROKER_UNREACHABLE,))
    mismatch = failed(WEB_REDIS, "VersionMismatch", (dx.KOMBU_MISMATCH,))
    assert _report(passed(REDIS_PING, "PONG"), mismatch, e2e) == [dx.KOMBU_MISMATCH]
    down = failed(REDIS_PING, "refused", (dx.BROKER_UNREACHABLE,))
    assert _report(down, mismatch, e2e) == [dx.BROKER_UNREACHABLE, dx.KOMBU_MISMATCH]


def test_findings_list_each_mode_once_with_its_checks_and_warnings_count() -> None:
    findings = dx.diagnose(
        (
            failed(CHECKS[0], "beat down", (dx.BEAT_MISSING,)),
            failed(BEAT, "no beat", (dx.BEAT_MISSING,)),
            CheckResult(CHECKS[2], Status.WARN, "drift", (dx.CONFIG_DRIFT,)),
            failed(CHECKS[3], "?", ()),
        )
    )
    assert [(f.code, f.checks) for f in findings] == [
        (dx.BEAT_MISSING, (1, 5)),
        (dx.CONFIG_DRIFT, (3,)),
        (dx.UNKNOWN, (4,)),
    ]


def test_the_json_report_takes_each_remedy_from_the_table() -> None:
    results = (judge.judge_beat(replace(BEAT_OK, pids=())), judge.judge_services(ServiceFacts(LOCAL, "200")))
    report = VerifyReport("s.json", "c.py", "local", results, dx.diagnose(results), 0.1)
    data = as_dict(report)
    assert data["exit_code"] == 1
    assert data["checks"][0]["remedy"] == dx.MODES[dx.BEAT_MISSING].fix
    assert data["checks"][0]["diagnosis"] == [dx.BEAT_MISSING]
    assert data["checks"][1]["remedy"] is None
