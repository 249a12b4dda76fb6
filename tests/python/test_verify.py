"""`superset-async verify` against real stacks: a healthy one passes all nine checks; every injected
fault fails the check that should catch it, with the expected diagnosis (docs/verify.md). These show
that the gather layer finds the facts on real components; test_verify_verdicts.py runs every verdict
from hand-written facts.

Non-destructive faults use the session's shared stack (config variants, a mismatched virtualenv);
destructive ones share one private stack (`faulty`), each restoring what it broke where it can;
the two that cannot be undone (beat killed, Redis stopped) come last.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis as redis_py
from fixtures.common import SettingsFactory, free_port, run_cli, write_secret
from fixtures.stack import Stack, start_stack
from fixtures.verify_faults import (
    VerifyRun,
    broker_url,
    extra_role,
    paused,
    run_verify,
    variant,
    wait_for_health,
    wait_for_worker,
)
from superset_async_glue.loading import load_settings
from superset_async_glue.redis_urls import role_url, with_auth
from superset_async_glue.render import render_config
from superset_async_glue.verify.client import SupersetApiError, SupersetClient
from superset_async_glue.verify.redact import Redactor
from superset_async_glue.verify.target import load_config

CHECK_KEYS = [
    "services",
    "redis_ping",
    "redis_roles",
    "workers",
    "beat",
    "config",
    "web_redis",
    "worker_redis",
    "end_to_end",
]
LONG_QUERY = "SELECT sleep(3) + sleep(2.99) + sleep(2.98) + sleep(2.97) AS slept"  # about 12 s in ClickHouse
FAULT_LIMIT = 5  # sql_lab.async_time_limit_seconds of the private stack


def secrets_of(stack: Stack) -> list[str]:
    return [p.read_text().rstrip("\r\n") for p in (stack.state_dir / "secrets").iterdir()]


def assert_no_secret(stack: Stack, *texts: str) -> None:
    for secret in secrets_of(stack):
        for text in texts:
            assert secret not in text
            assert quote(secret, safe="") not in text


def assert_fault(run: VerifyRun, check: str, diagnosis: str) -> None:
    assert run.code == 1, run.explain()
    assert run.status(check) == "fail", run.explain()
    assert diagnosis in run.check(check)["diagnosis"], run.explain()
    assert diagnosis in run.diagnoses(), run.explain()
    assert run.check(check)["remedy"], run.explain()


# -- the shared, healthy stack ---------------------------------------------------------------------


def test_a_healthy_stack_passes_every_check_with_a_line_per_check(stack: Stack) -> None:
    run = run_verify(stack, human=True)
    assert run.code == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    for number in range(1, 10):
        assert any(f"[PASS] {number}/9 " in line for line in lines), run.stdout
    assert "OK: 9 passed, 0 warned, 0 failed, 0 skipped" in run.stdout
    assert "\x1b[" not in run.stdout  # not a terminal: no colour codes
    assert_no_secret(stack, run.stdout, run.stderr)


def test_the_json_report_shows_the_real_query_and_the_gaq_round_trip(stack: Stack) -> None:
    run = run_verify(stack)
    assert run.code == 0, run.explain()
    report = run.report
    assert report is not None
    assert report["ok"] is True and report["exit_code"] == 0
    assert [c["key"] for c in report["checks"]] == CHECK_KEYS
    assert {c["status"] for c in report["checks"]} == {"pass"}
    assert report["diagnosis"] == []
    details = run.check("end_to_end")["details"]  # the facts check 9 was judged from
    steps = {s["name"]: s for s in details["steps"]}
    query = steps[repr(stack.clickhouse_database_name)]
    assert query["ok"] and query["query_id"] and 0 < query["seconds"] < 30
    assert steps["GAQ chart data"]["ok"]
    assert "202 job -> event done" in steps["GAQ chart data"]["text"]
    assert details["form"]["ok"], details["form"]  # the browser's way in: the form and its CSRF token
    assert f"-> 302 to /, logged in as {stack.admin_username!r}" in details["form"]["text"]
    assert details["api_login"]["ok"], details["api_login"]
    workers = run.check("workers")["details"]["workers"]
    assert any(w["sqllab_registered"] and "celery" in w["queues"] for w in workers)
    assert run.check("config")["details"]["sqllab_annotation"]["soft_time_limit"] == 300
    assert run.check("web_redis")["details"]["publish_ok"] is True
    assert all(c["seconds"] >= 0 for c in report["checks"])
    assert_no_secret(stack, run.stdout, run.stderr)


def test_no_query_skips_check_9_and_never_counts_it_as_passed(stack: Stack) -> None:
    # Only --state-dir: settings and config come from the local stack's stack.json.
    result = run_cli("verify", "--state-dir", str(stack.state_dir), "--no-query")
    run = VerifyRun(result.code, result.stdout, result.stderr, 0.0, None)
    assert run.code == 0, run.stdout
    assert "[SKIP] 9/9 end to end (SQL Lab, GAQ): --no-query" in run.stdout
    assert "8 passed, 0 warned, 0 failed, 1 skipped" in run.stdout
    assert "skipped checks are not passes" in run.stdout


def test_kombu_5_7_with_redis_py_5_in_the_web_environment_is_diagnosed(stack: Stack, mismatched_python: Path) -> None:
    run = run_verify(stack, "--no-query", "--web-python", str(mismatched_python))
    assert_fault(run, "web_redis", "kombu-redis-mismatch")
    reason = run.check("web_redis")["reason"]
    assert "kombu 5.7" in reason and "redis-py 5." in reason
    assert "requires redis-py versions 6.1.0 or later" in reason
    assert run.status("redis_ping") == "pass"  # Redis itself is fine: only the web's environment is broken


def test_a_short_gaq_secret_file_is_diagnosed(stack: Stack, tmp_path: Path) -> None:
    secret = write_secret(tmp_path / "gaq_jwt")
    settings, config = variant(stack, tmp_path, {"global_async_queries": {"jwt_secret_file": str(secret)}}, "gaq")
    write_secret(secret, "too-short-16byte")  # replaced after the deployment rendered the config
    run = run_verify(stack, "--no-query", settings=settings, config=config)
    assert_fault(run, "config", "gaq-secret")
    assert "holds 16 bytes; at least 32" in run.check("config")["reason"]
    assert "too-short-16byte" not in run.stdout + run.stderr
    # The rendered config refuses a short secret at import: Superset would not start, so no client exists to
    # ping (verify no longer rebuilds the URLs from the settings); the checks that need one say so.
    assert run.status("redis_ping") == "skipped", run.explain()
    assert "check 6" in run.check("redis_ping")["reason"]


def test_a_missing_gaq_secret_file_is_diagnosed(stack: Stack, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-gaq-secret"
    settings, config = variant(stack, tmp_path, {"global_async_queries": {"jwt_secret_file": str(missing)}}, "gaq")
    run = run_verify(stack, "--no-query", settings=settings, config=config)
    assert_fault(run, "config", "gaq-secret")
    assert f"{missing} does not exist" in run.check("config")["reason"]


def test_a_config_without_results_backend_is_diagnosed(stack: Stack, tmp_path: Path) -> None:
    settings, config = variant(stack, tmp_path, {"extra_config": "RESULTS_BACKEND = None\n"}, "noresults")
    run = run_verify(stack, "--no-query", settings=settings, config=config)
    assert_fault(run, "config", "results-backend-missing")
    assert run.status("redis_roles") == "pass"  # one verdict per fact: the results backend is check 6's
    assert "RESULTS_BACKEND is None" in run.check("config")["reason"]


def test_a_config_without_the_time_limit_annotation_is_diagnosed(stack: Stack, tmp_path: Path) -> None:
    settings, config = variant(stack, tmp_path, {"extra_config": "CeleryConfig.task_annotations = {}\n"}, "nolimit")
    run = run_verify(stack, "--no-query", settings=settings, config=config)
    assert_fault(run, "config", "time-limit-not-enforced")
    assert "soft_time_limit 21600s from the config" in run.check("config")["reason"]


def test_a_wrong_admin_password_is_reported_as_refused_not_as_a_broken_form(stack: Stack, tmp_path: Path) -> None:
    wrong = write_secret(tmp_path / "admin_password")  # a valid secret file, but not the admin's password
    settings, _config = variant(stack, tmp_path, {"admin": {"password_file": str(wrong)}}, "wrongpw")
    run = run_verify(stack, settings=settings)
    assert_fault(run, "end_to_end", "admin-login-refused")
    reason = run.check("end_to_end")["reason"]
    assert 'Superset says "Invalid login. Please try again."' in reason, reason
    assert "HTTP 401" in reason, reason  # the REST API refuses it too
    assert "form-login-broken" not in run.diagnoses()
    assert wrong.read_text().strip() not in run.stdout + run.stderr


def test_a_login_form_answering_500_is_diagnosed_while_the_api_works(
    stack: Stack, tmp_path: Path, old_wtforms_json: Path
) -> None:
    # The issue's fault for real: a second web of the shared stack, on its own port, importing wtforms-json
    # 0.3.4 (first on PYTHONPATH) instead of the locked 0.3.5. Same config, same metadata DB, same workers.
    port = free_port()
    settings, _config = variant(stack, tmp_path, {"web": {"port": port}}, "oldwtf")
    log = tmp_path / "web-oldwtf.log"
    with extra_role("web", settings, stack.config_path, log, {"PYTHONPATH": str(old_wtforms_json)}) as web:
        wait_for_health(f"http://127.0.0.1:{port}/", web, log)
        run = run_verify(stack, settings=settings)
    assert_fault(run, "end_to_end", "form-login-broken")
    reason = run.check("end_to_end")["reason"]
    assert "POST /login/ (username, password, CSRF token) answered HTTP 500" in reason, reason
    assert "(the REST API login works)" in reason, reason
    assert "wtforms-json==0.3.5" in run.check("end_to_end")["remedy"]
    details = run.check("end_to_end")["details"]
    steps = {s["name"]: s for s in details["steps"]}
    assert not details["form"]["ok"]
    assert steps[repr(stack.clickhouse_database_name)]["ok"] and steps["GAQ chart data"]["ok"]  # only the form
    assert "admin-login-refused" not in run.diagnoses()
    # The 500 is the issue's: the extra web logged wtforms-json 0.3.4's TypeError.
    text = log.read_text()
    assert "unexpected keyword argument 'extra_filters'" in text, text[-3000:]


def test_bad_settings_and_bad_usage_exit_2(stack: Stack, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"secret_key_file": "not-absolute"}')
    result = run_cli("verify", "--settings", str(bad), "--config", str(stack.config_path))
    assert result.code == 2
    assert "secret_key_file" in result.stderr and "absolute path" in result.stderr
    result = run_cli("verify", "--settings", str(stack.settings_path), "--config", str(tmp_path / "missing.py"))
    assert result.code == 2
    result = run_cli(
        "verify", "--settings", str(stack.settings_path), "--config", str(stack.config_path), "--platform", "docker"
    )
    assert result.code == 2


def test_nothing_running_fails_check_1_and_names_what_to_start(make_settings: SettingsFactory, tmp_path: Path) -> None:
    settings = make_settings({"redis": {"port": free_port()}, "web": {"port": free_port()}})
    config = tmp_path / "superset_config.py"
    assert run_cli("render", "--settings", str(settings), "--output", str(config)).code == 0
    result = run_cli("verify", "--settings", str(settings), "--config", str(config), "--json", timeout=120)
    assert result.code == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    services = report["checks"][0]
    assert services["status"] == "fail"
    assert "found neither" in services["reason"] and "stack.json" in services["reason"]
    assert "broker-unreachable" in {d["code"] for d in report["diagnosis"]}


# -- the rendered config's Redis clients, as verify builds them from the imported module -------------


@pytest.mark.parametrize(
    "redis",
    [
        {},
        {"password_file": "PASSWORD"},
        {"username": "superset", "password_file": "PASSWORD"},
        {"unix_socket": "/run/redis-superset-async/redis.sock", "password_file": "PASSWORD"},
        {
            "host": "::1",
            "port": 6390,
            "dbs": {"broker": 5, "results": 6, "cache": 7, "data_cache": 8, "async_events": 9},
        },
    ],
)
def test_the_imported_configs_redis_clients_are_the_settings(
    make_settings: SettingsFactory, tmp_path: Path, redis: dict[str, object]
) -> None:
    password = "p@ss/word:with#chars"
    if redis.get("password_file") == "PASSWORD":
        redis = {**redis, "password_file": str(write_secret(tmp_path / "redis-pw", password))}
    settings = load_settings(make_settings({"redis": redis}))
    config = tmp_path / "superset_config.py"
    config.write_text(render_config(settings))
    loaded = load_config(config)
    assert loaded.error is None, loaded.error
    r = settings.redis
    auth = {"password": password if r.password_file else None, "username": r.username}
    socket = {"path": r.unix_socket} if r.unix_socket else {"host": r.host, "port": r.port}
    found = {}
    for endpoint in loaded.endpoints:
        if endpoint.kind == "kombu":
            continue  # kombu's URL: the broker's PING through kombu is covered on the real stack
        if endpoint.url is not None:
            url = endpoint.url.replace("redis+socket://", "unix://", 1)  # Celery's spelling of a socket
            kwargs = dict(redis_py.ConnectionPool.from_url(url, **endpoint.kwargs).connection_kwargs)
        else:
            kwargs = endpoint.kwargs
        # Superset's GAQ backend builds redis.Redis(host=, port=) itself: always TCP (render.py says so).
        where = {"host": r.host, "port": r.port} if endpoint.role == "async_events" else socket
        expected = {"db": getattr(r.dbs, endpoint.role), **auth, **where}
        found[endpoint.client] = {k: kwargs.get(k) for k in expected}
        assert found[endpoint.client] == expected, endpoint.client
    # The rendered config adds credentials with its own _with_auth (it must import without the glue); the
    # glue's clients use redis_urls.with_auth: the two rules give the same URL.
    secret = password if r.password_file else None
    assert loaded.broker_url == with_auth(role_url(r, r.dbs.broker, "kombu"), r.username, secret)
    assert set(found) == {
        "CELERY_CONFIG.result_backend",
        "RESULTS_BACKEND",
        "CACHE_CONFIG",
        "DATA_CACHE_CONFIG",
        "GLOBAL_ASYNC_QUERIES_CACHE_BACKEND",
    }


def test_the_redactor_masks_secrets_and_url_passwords() -> None:
    r = Redactor(["s3cr3t/value", "abc"])
    assert r.text("x s3cr3t/value y s3cr3t%2Fvalue") == "x ******** y ********"
    assert r.text("redis://:other-pw@host:6379/0") == "redis://:********@host:6379/0"
    assert r.text("abc is too short to be treated as a secret") == "abc is too short to be treated as a secret"
    assert r.data({"k": ["s3cr3t/value", 1]}) == {"k": ["********", 1]}


# -- one private stack for the destructive faults ----------------------------------------------------


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A private stack whose async time limit is short enough to watch a query being killed."""
    overrides = {"sql_lab": {"timeout_seconds": FAULT_LIMIT, "async_time_limit_seconds": FAULT_LIMIT}}
    with start_stack(tmp_path_factory.mktemp("faulty"), overrides) as running:
        yield running


def client_of(stack: Stack) -> tuple[SupersetClient, int]:
    client = SupersetClient(stack.web_url, stack.admin_username, stack.admin_password())
    return client, client.database_id(stack.clickhouse_database_name)


def test_faulty_stack_passes_before_any_fault_and_enforces_its_time_limit(faulty: Stack) -> None:
    run = run_verify(faulty)
    assert run.code == 0, run.explain()
    assert f"soft_time_limit {FAULT_LIMIT}s" in run.check("config")["reason"]
    client, database_id = client_of(faulty)
    outcome = client.run_async(database_id, LONG_QUERY, timeout=60)
    assert outcome.state == "failed", outcome
    assert f"killed after {FAULT_LIMIT} seconds" in (outcome.error or ""), outcome
    assert FAULT_LIMIT <= outcome.seconds < FAULT_LIMIT + 6, outcome


def test_a_second_beat_is_diagnosed(faulty: Stack, tmp_path: Path) -> None:
    # Its own state dir (schedule file), the stack's config: a second beat on the same broker.
    settings, _config = variant(faulty, tmp_path, {"state_dir": str(tmp_path / "beat2")}, "beat2")
    (tmp_path / "beat2").mkdir()
    with extra_role("beat", settings, faulty.config_path, tmp_path / "beat2.log") as beat:
        time.sleep(1)
        assert beat.poll() is None, (tmp_path / "beat2.log").read_text()
        run = run_verify(faulty, "--no-query")
    assert_fault(run, "beat", "beat-duplicate")
    assert str(beat.pid) in run.check("beat")["reason"]


def test_a_stopped_worker_is_diagnosed_as_no_worker_and_the_query_as_pending(faulty: Stack) -> None:
    with paused(faulty.processes()["worker"]):
        run = run_verify(faulty)
    assert_fault(run, "workers", "no-worker")
    assert_fault(run, "end_to_end", "no-worker")
    assert "still pending" in run.check("end_to_end")["reason"]
    assert run.status("worker_redis") == "skipped"


def test_a_worker_on_another_broker_db_is_diagnosed(faulty: Stack, tmp_path: Path) -> None:
    settings, config = variant(
        faulty, tmp_path, {"redis": {"dbs": {"broker": 7}}, "worker": {"extra_args": ["--hostname=otherdb@%h"]}}, "db7"
    )
    log = tmp_path / "worker-db7.log"
    with paused(faulty.processes()["worker"]), extra_role("worker", settings, config, log) as worker:
        name = wait_for_worker(broker_url(faulty, 7), "otherdb", worker, log)
        run = run_verify(faulty, "--no-query")
    assert_fault(run, "workers", "worker-other-broker-db")
    reason = run.check("workers")["reason"]
    assert "DB 7" in reason and name in reason


def test_web_and_worker_on_different_metadata_dbs_is_diagnosed(faulty: Stack, tmp_path: Path) -> None:
    other = tmp_path / "other-superset.db"
    with sqlite3.connect(faulty.state_dir / "superset.db") as source, sqlite3.connect(other) as copy:
        source.backup(copy)  # a metadata DB that looks right but is not the web's
    settings, config = variant(
        faulty,
        tmp_path,
        {"metadata_db": {"uri": f"sqlite:///{other}"}, "worker": {"extra_args": ["--hostname=othermeta@%h"]}},
        "meta",
    )
    log = tmp_path / "worker-meta.log"
    with paused(faulty.processes()["worker"]), extra_role("worker", settings, config, log) as worker:
        wait_for_worker(broker_url(faulty), "othermeta", worker, log)
        run = run_verify(faulty)
    assert_fault(run, "end_to_end", "metadata-db-mismatch")
    assert "web and worker use different metadata databases" in run.check("end_to_end")["reason"]
    assert run.status("workers") == "warn"  # the worker on this host runs another config file
    assert str(config) in run.check("workers")["reason"]


def test_a_web_without_the_time_limit_is_diagnosed_and_really_does_not_kill(faulty: Stack, tmp_path: Path) -> None:
    # Celery sends the web's limits with each task: a web whose config lacks the task annotation makes the
    # (correctly configured) worker run upstream's 6 h limit. A second web with such a config, on its own port:
    port = free_port()
    overrides = {"extra_config": "CeleryConfig.task_annotations = {}\n", "web": {"port": port}}
    settings, config = variant(faulty, tmp_path, overrides, "nolimit")
    log = tmp_path / "web-nolimit.log"
    with extra_role("web", settings, config, log) as web:
        wait_for_health(f"http://127.0.0.1:{port}/", web, log)
        run = run_verify(faulty, "--no-query", settings=settings, config=config)
        client = SupersetClient(f"http://127.0.0.1:{port}/", faulty.admin_username, faulty.admin_password())
        outcome = client.run_async(client.database_id(faulty.clickhouse_database_name), LONG_QUERY, timeout=60)
    assert_fault(run, "config", "time-limit-not-enforced")
    assert "soft_time_limit 21600s from the config" in run.check("config")["reason"]
    assert outcome.state == "success", outcome  # it ran its whole ~12 s: the 5 s limit was not enforced
    assert outcome.seconds > FAULT_LIMIT + 4, outcome


def test_no_beat_is_diagnosed(faulty: Stack) -> None:
    stopped = faulty.cli("stop-role", "beat")  # kept stopped: the runner restarts a beat that just exits
    assert stopped.code == 0, stopped.stdout + stopped.stderr
    run = run_verify(faulty, "--no-query")
    assert_fault(run, "beat", "beat-missing")
    assert_fault(run, "services", "beat-missing")


def test_the_seeds_failure_redis_stopped_gives_1035_and_is_diagnosed(faulty: Stack) -> None:
    client, database_id = client_of(faulty)  # logged in while Redis still runs
    stopped = faulty.cli("stop-role", "redis")  # kept stopped: the runner restarts a Redis that just exits
    assert stopped.code == 0, stopped.stdout + stopped.stderr
    with pytest.raises(SupersetApiError) as raised:
        client.submit_async(database_id, "SELECT 1")
    assert raised.value.status == 500
    assert raised.value.message == "Failed to start remote query on a worker."
    assert 1035 in raised.value.issue_codes
    run = run_verify(faulty)
    assert_fault(run, "redis_ping", "broker-unreachable")
    assert_fault(run, "end_to_end", "broker-unreachable")
    assert "Failed to start remote query on a worker." in run.check("end_to_end")["reason"]
    assert "issue code 1035" in run.check("end_to_end")["reason"]
    assert "kombu-redis-mismatch" not in run.diagnoses()
    shutil.rmtree(faulty.state_dir / "redis", ignore_errors=True)
