"""The runner supervises: a role that dies is restarted with backoff, a crash loop is given up on.

One private stack (module scope) with a short start limit (3 exits within 30 s), killed piece by
piece with SIGKILL: Redis (results finished before stay fetchable, a query queued before runs once,
web and worker reconnect with their pids unchanged), the worker, the web; then ClickHouse whose port
another program took, which fails at once at every start until the start limit; `stop-role` keeps
a role down, `start-role` brings it back. Each step ends with an async query that runs.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
import redis
from fixtures.stack import Stack, start_stack
from fixtures.superset_api import SupersetApiError, SupersetClient
from superset_async_glue import procfs
from superset_async_glue.loading import load_settings
from superset_async_glue.runner.readiness import web_health, worker_ping
from superset_async_glue.runner.redis_server import ping as redis_ping
from superset_async_glue.runner.supervisor import RestartPolicy
from superset_async_glue.sqllab_watchdog import sql_lab_query_id

BURST, INTERVAL = 3, 30
UP_ARGS = ("--start-limit-burst", str(BURST), "--start-limit-interval", str(INTERVAL))
CITIES = "SELECT count() AS n FROM demo.cities"


@pytest.fixture(scope="module")
def supervised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # A long pending timeout: the query queued with the worker stopped must wait for it, not be failed.
    overrides = {"sql_lab": {"pending_timeout_seconds": 300}}
    with start_stack(tmp_path_factory.mktemp("supervised"), overrides, UP_ARGS) as stack:
        yield stack


def client_of(stack: Stack) -> tuple[SupersetClient, int]:
    client = SupersetClient(stack.web_url, stack.admin_username, stack.admin_password())
    return client, client.database_id(stack.clickhouse_database_name)


def process(stack: Stack, role: str) -> dict[str, Any]:
    found: dict[str, Any] = stack.stack_json()["processes"][role]
    return found


def wait_until(what: str, check: Callable[[], bool], timeout: float) -> float:
    """Seconds until `check()` held; fails the test with `what` at the timeout."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"not within {timeout}s: {what}")
        time.sleep(0.1)
    return time.monotonic() - started


def wait_restarted(
    stack: Stack, role: str, old_pid: int, restarts: int, *, timeout: float = 30, status_code: int = 0
) -> dict[str, Any]:
    """The role runs again as a new process, the restart counted, the SIGKILL recorded as its last exit."""

    def restarted() -> bool:
        p = process(stack, role)
        return bool(p["pid"] != old_pid and p["restarts"] == restarts and procfs.is_alive(p["pid"], p["start_ticks"]))

    wait_until(f"{role} restarted (restart {restarts})", restarted, timeout)
    p = process(stack, role)
    assert p["supervision"] == "running"
    assert p["last_exit_code"] == -signal.SIGKILL
    assert procfs.group_members(old_pid) == [], f"the old {role} group outlived the restart"
    status = stack.cli("status")
    assert status.code == status_code, status.stdout
    line = next(x for x in status.stdout.splitlines() if x.startswith(f"  {role:<10} "))
    assert line.startswith(f"  {role:<10} running (pid {p['pid']}, "), line
    assert f"; restarts {restarts}, last exit: killed by SIGKILL at " in line, line
    return p


def run_when_possible(client: SupersetClient, database_id: int, sql: str, timeout: float = 60) -> tuple[Any, float]:
    """An async query, resubmitted while the stack still refuses it (e.g. 1035 right after a restart)."""
    started = time.monotonic()
    while True:
        try:
            outcome = client.run_async(database_id, sql, timeout=timeout)
        except SupersetApiError:
            if time.monotonic() - started > timeout:
                raise
            time.sleep(0.5)
            continue
        assert outcome.state == "success", outcome
        return outcome.rows, time.monotonic() - started


def kill(pid: int) -> float:
    os.kill(pid, signal.SIGKILL)
    return time.monotonic()


def test_redis_killed_is_restarted_keeps_results_and_web_and_worker_reconnect(supervised: Stack) -> None:
    settings = load_settings(supervised.settings_path)
    client, database_id = client_of(supervised)
    finished = client.run_async(database_id, "SELECT name FROM demo.cities WHERE id <= 3 ORDER BY id")
    assert finished.state == "success", finished
    results_key = client.query(finished.query_id)["results_key"]
    others = {role: process(supervised, role)["pid"] for role in ("clickhouse", "web", "worker", "beat")}
    before = process(supervised, "redis")

    killed = kill(before["pid"])  # right after the query's results were stored
    after = wait_restarted(supervised, "redis", before["pid"], 1)
    wait_until("Redis answers PING", lambda: redis_ping(settings), 30)
    back = time.monotonic() - killed
    assert after["argv"] == before["argv"]  # the same STATE/run/redis.conf, so the same data dir and AOF
    config = cast(
        dict[str, str],
        redis.Redis(
            host=supervised.redis_host, port=supervised.redis_port, password=supervised.redis_password()
        ).config_get("*"),
    )
    assert (config["appendonly"], config["appendfsync"]) == ("yes", "always")
    assert config["dir"] == str(supervised.state_dir / "redis")

    # What was promised before the kill is still there, through the same (not restarted) web.
    assert client.results(results_key) == (finished.columns, finished.rows)
    rows, first = run_when_possible(client, database_id, CITIES)
    assert rows == [[8]]
    assert {role: process(supervised, role)["pid"] for role in others} == others, "a role was restarted"
    assert all(process(supervised, role)["restarts"] == 0 for role in others)
    print(f"\nRedis SIGKILL: PING again after {back:.1f}s; first new query ok {first:.1f}s after that")


def sql_lab_queries_waiting(broker: redis.Redis) -> list[int]:
    """Query ids of the SQL Lab tasks in the broker's default queue."""
    return [i for i in map(sql_lab_query_id, broker.lrange("celery", 0, -1)) if i is not None]


def test_a_query_queued_before_redis_dies_runs_once_when_redis_and_a_worker_are_back(supervised: Stack) -> None:
    settings = load_settings(supervised.settings_path)
    client, database_id = client_of(supervised)
    held = supervised.cli("stop-role", "worker")
    assert held.code == 0, held.stdout + held.stderr
    status = supervised.cli("status")
    assert status.code == 1
    assert "  worker     stopped: by stop-role" in status.stdout
    time.sleep(2)  # the runner would have restarted it by now
    assert not procfs.group_members(process(supervised, "worker")["pgid"])
    assert worker_ping(settings) == []

    queued = client.submit_async(database_id, "SELECT 'queued' AS tag, count() AS n FROM demo.cities")
    broker = redis.Redis(
        host=supervised.redis_host,
        port=supervised.redis_port,
        password=supervised.redis_password(),
        db=supervised.broker_db,
    )
    # Counted by SQL Lab task: beat's once-a-minute reports.scheduler message may wait there too.
    assert sql_lab_queries_waiting(broker) == [queued.query_id]  # the task waits in the broker's queue
    before = process(supervised, "redis")
    kill(before["pid"])
    wait_restarted(supervised, "redis", before["pid"], 2, status_code=1)  # 1: the worker is held
    wait_until("Redis answers PING", lambda: redis_ping(settings), 30)
    assert sql_lab_queries_waiting(broker) == [queued.query_id]  # replayed from the AOF
    assert client.query(queued.query_id)["status"] == "pending"

    started = supervised.cli("start-role", "worker")
    assert started.code == 0, started.stdout + started.stderr
    assert process(supervised, "worker")["restarts"] == 0  # a start on request is not a restart
    deadline = time.monotonic() + 60
    while (state := client.query(queued.query_id))["status"] not in ("success", "failed"):
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    assert state["status"] == "success", state.get("error_message")
    assert client.results(state["results_key"])[1] == [["queued", 8]]
    assert sql_lab_queries_waiting(broker) == []


def test_worker_killed_is_restarted_and_runs_queries(supervised: Stack) -> None:
    settings = load_settings(supervised.settings_path)
    client, database_id = client_of(supervised)
    before = process(supervised, "worker")
    children = [pid for pid in procfs.group_members(before["pgid"]) if pid != before["pid"]]
    assert children, "the prefork pool has no child processes"
    killed = kill(before["pid"])  # the leader only: its pool children are left for the runner to stop
    wait_restarted(supervised, "worker", before["pid"], 1)
    assert not any(procfs.is_alive(pid) for pid in children)
    wait_until("a worker answers a Celery ping", lambda: bool(worker_ping(settings)), 60)
    back = time.monotonic() - killed
    rows, _ = run_when_possible(client, database_id, CITIES)
    assert rows == [[8]]
    print(f"\nworker SIGKILL: answering pings again after {back:.1f}s")


def test_web_killed_is_restarted_and_serves_again(supervised: Stack) -> None:
    settings = load_settings(supervised.settings_path)
    client, database_id = client_of(supervised)
    before = process(supervised, "web")
    killed = kill(before["pid"])  # gunicorn's master; its workers still hold the port until stopped
    wait_restarted(supervised, "web", before["pid"], 1)
    wait_until("GET /health -> 200", lambda: web_health(settings), 90)
    back = time.monotonic() - killed
    rows, _ = run_when_possible(client, database_id, CITIES)  # the same login: tokens outlive the web
    assert rows == [[8]]
    print(f"\nweb SIGKILL: /health 200 again after {back:.1f}s")


def test_a_role_that_keeps_crashing_is_reported_failed_and_not_restarted(supervised: Stack) -> None:
    """ClickHouse whose HTTP port another program took: every start fails at once."""
    client, database_id = client_of(supervised)
    assert supervised.cli("stop-role", "clickhouse").code == 0
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", supervised.clickhouse_http_port))
        squatter.listen()
        began = time.monotonic()
        started = supervised.cli("start-role", "clickhouse")
        # 0 when it was seen running before it failed, else 1 with the cause
        assert started.code == 0 or "clickhouse started (pid" in started.stderr, started.stdout + started.stderr
        wait_until("clickhouse marked failed", lambda: process(supervised, "clickhouse")["supervision"] == "failed", 60)
        gave_up = time.monotonic() - began
        failed = process(supervised, "clickhouse")
        assert failed["restarts"] == BURST - 1  # the start on request, then BURST - 1 restarts, each exited
        assert failed["last_exit_code"] > 0
        time.sleep(3)  # longer than the next delay would have been: nothing starts it again
        assert process(supervised, "clickhouse")["pid"] == failed["pid"]
        status = supervised.cli("status")
        assert status.code == 1
        assert (
            "  clickhouse failed: start limit hit, not restarted (superset-async start-role clickhouse" in status.stdout
        )
        assert f"; restarts {BURST - 1}, last exit: exit code {failed['last_exit_code']} at " in status.stdout
        # Each of the BURST starts failed on the taken port (ClickHouse's own error log says so).
        errors = (supervised.state_dir / "logs" / "clickhouse-server.err.log").read_text(errors="replace")
        assert errors.count(f"Address already in use: 127.0.0.1:{supervised.clickhouse_http_port}") == BURST
        log = (supervised.state_dir / "logs" / "supervisor.log").read_text(errors="replace")
        assert f"{BURST} exits within {INTERVAL}s: start limit hit, not restarted" in log
        assert "restarting in 1s" in log and "restarting in 2s" in log
    again = supervised.cli("start-role", "clickhouse")
    assert again.code == 0, again.stdout + again.stderr
    rows, _ = run_when_possible(client, database_id, CITIES)
    assert rows == [[8]]
    assert supervised.cli("status").code == 0
    print(f"\nclickhouse crash loop: failed after {gave_up:.1f}s ({BURST} exits, delays 1s and 2s)")


def test_the_default_policy_doubles_the_delay_up_to_30s_and_gives_up_at_6_exits_in_120s() -> None:
    policy = RestartPolicy()
    assert (policy.burst, policy.interval) == (6, 120.0)
    assert [policy.delay_after(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]
    # A role failing at every start: 5 restarts after 1+2+4+8+16 s, then the 6th exit hits the limit.
    assert sum(policy.delay_after(n) for n in range(1, policy.burst)) == 31
