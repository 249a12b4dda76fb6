"""sql_lab.pending_timeout_seconds: an async query no Celery worker picks up ends failed, with the fix.

The seed's "pending forever" (broker up, no worker): the web's pending watchdog must fail the query
within timeout + sweep interval + ping, with a message a person can act on, where SQL Lab's UI
reads it (updated_since: changed_on, extra.errors). A worker that is alive but busy must leave the
query pending, and it then runs. One private stack, with a 10 s timeout and a single worker child.

The same stack has a SQL Lab lane (sql_lab.lanes, issue 15): the demo ClickHouse registered a second
time as "ClickHouse (interactive)", served by its own worker (role worker-interactive, one child). A
short query there finishes within a second while the shared worker is full; and with the shared
worker stopped, the lane worker's answer to the ping does not keep the shared queue's query pending.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fixtures.common import SettingsFactory, run_cli
from fixtures.stack import Stack, start_stack, write_stack_settings
from fixtures.superset_api import SupersetClient
from pydantic import ValidationError
from superset_async_glue import procfs
from superset_async_glue.loading import load_settings
from superset_async_glue.runner.readiness import worker_ping
from superset_async_glue.secret_io import read_secret
from superset_async_glue.settings import Settings
from superset_async_glue.sqllab_watchdog import (
    FAILURE_PREFIX,
    IN_TRANSIT_PREFIX,
    MISSING_CONFIRM_SECONDS,
    SWEEP_INTERVAL_SECONDS,
    bound_seconds,
)

TIMEOUT = 10
BOUND = bound_seconds(TIMEOUT)  # 16 s: timeout, one 5 s sweep interval, the 1 s ping
# pending timeout, then a first look at the broker and a second one MISSING_CONFIRM_SECONDS later
IN_TRANSIT_BOUND = BOUND + MISSING_CONFIRM_SECONDS + SWEEP_INTERVAL_SECONDS
MARGIN = 3.0  # polling, SQLite commit, a loaded 2-core machine
# Superset's SQL Lab on ClickHouse 18: sleep() takes at most 3 s per block, so one block per row.
BLOCKER_SECONDS = 24  # longer than BOUND + MARGIN, so the queued query outlives the sweep's bound
BLOCKER_SQL = "SELECT count() AS n FROM (SELECT sleep(3) FROM numbers(8) SETTINGS max_block_size=1)"


# -- the rendered config (fast) --------------------------------------------------------------------


def test_setting_range_and_default() -> None:
    base: dict[str, Any] = {"secret_key_file": "/run/k", "global_async_queries": {"jwt_secret_file": "/run/j"}}
    assert Settings.model_validate(base).sql_lab.pending_timeout_seconds == 30
    for bad in (4, 3601):
        with pytest.raises(ValidationError, match="pending_timeout_seconds"):
            Settings.model_validate({**base, "sql_lab": {"pending_timeout_seconds": bad}})


def test_rendered_config_installs_the_watchdog_in_the_app(make_settings: SettingsFactory, tmp_path: Path) -> None:
    config = tmp_path / "superset_config.py"
    settings = make_settings({"sql_lab": {"pending_timeout_seconds": TIMEOUT}})
    assert run_cli("render", "--settings", str(settings), "--output", str(config)).code == 0
    assert f"SUPERSET_ASYNC_SQLLAB_PENDING_TIMEOUT_SECONDS = {TIMEOUT}\n" in config.read_text()
    # The rendered FLASK_APP_MUTATOR, run on a Flask app in the stack's interpreter: the watchdog is
    # attached with the setting's timeout and waits for the first request (no thread yet).
    code = (
        "import importlib.util, json, threading\n"
        "from flask import Flask\n"
        f"spec = importlib.util.spec_from_file_location('superset_config', {str(config)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "app = Flask('probe'); m.FLASK_APP_MUTATOR(app)\n"
        "w = app.extensions['superset_async_pending_watchdog']\n"
        "names = [t.name for t in threading.enumerate()]\n"
        "print(json.dumps({'timeout': w.timeout_seconds, 'hooked': w.ensure_running in app.before_request_funcs[None],"
        " 'threads': names}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.splitlines()[-1])
    assert (seen["timeout"], seen["hooked"]) == (TIMEOUT, True)
    assert "superset-async-pending-watchdog" not in seen["threads"]


# -- a real stack ----------------------------------------------------------------------------------


INTERACTIVE = "ClickHouse (interactive)"  # the demo ClickHouse again, in the lane "interactive"
LANE = {"interactive": {"databases": [INTERACTIVE], "concurrency": 1}}


@pytest.fixture(scope="module")
def watchdog_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("watchdog")
    settings = write_stack_settings(root)  # start_stack keeps these and merges the overrides over them
    data = json.loads(settings.read_text())
    data["databases"].append({**data["databases"][0], "name": INTERACTIVE})
    settings.write_text(json.dumps(data))
    overrides = {"sql_lab": {"pending_timeout_seconds": TIMEOUT, "lanes": LANE}, "worker": {"concurrency": 1}}
    with start_stack(root, overrides) as stack:
        yield stack


def client_of(stack: Stack) -> tuple[SupersetClient, int]:
    client = SupersetClient(stack.web_url, stack.admin_username, stack.admin_password())
    return client, client.database_id(stack.clickhouse_database_name)


def wait_status(client: SupersetClient, query_id: int, wanted: set[str], timeout: float) -> tuple[str, float]:
    """Poll until the query reaches one of `wanted`: (status, seconds waited)."""
    start = time.monotonic()
    while True:
        status = str(client.query(query_id)["status"])
        if status in wanted or time.monotonic() - start > timeout:
            return status, time.monotonic() - start
        time.sleep(0.2)


def test_a_busy_worker_leaves_queued_queries_pending_and_they_run(watchdog_stack: Stack) -> None:
    settings = load_settings(watchdog_stack.settings_path)
    assert worker_ping(settings), "this test needs the stack's worker alive (it runs before the kill test)"
    client, database_id = client_of(watchdog_stack)
    blocker = client.submit_async(database_id, BLOCKER_SQL)
    assert wait_status(client, blocker.query_id, {"running"}, 30)[0] == "running"
    queued = client.submit_async(database_id, "SELECT 42 AS answer")
    # The only worker child is busy: the query waits on the broker past the watchdog's bound, and
    # the worker answers every ping, so it must never be failed.
    deadline = queued.started + BOUND + MARGIN
    while time.monotonic() < deadline:
        status = client.query(queued.query_id)["status"]
        assert status == "pending", f"query {queued.query_id} became {status!r} while the worker was busy"
        time.sleep(0.5)
    status, _ = wait_status(client, queued.query_id, {"success", "failed"}, BLOCKER_SECONDS + 30)
    assert status == "success", client.query(queued.query_id).get("error_message")
    assert client.query(blocker.query_id)["status"] == "success"


def test_a_lane_query_finishes_within_a_second_while_the_shared_worker_is_full(watchdog_stack: Stack) -> None:
    client, shared = client_of(watchdog_stack)
    interactive = client.database_id(INTERACTIVE)
    status = watchdog_stack.cli("status")
    assert re.search(r"^  worker-interactive +running", status.stdout, re.MULTILINE), status.stdout
    # The lane's child opens its connections with its first query; what is measured is the next one.
    warm = client.submit_async(interactive, "SELECT 0 AS warm")
    assert wait_status(client, warm.query_id, {"success", "failed"}, 30)[0] == "success"
    blockers = [client.submit_async(shared, "SELECT sleep(3) AS slow") for _ in range(2)]
    assert wait_status(client, blockers[0].query_id, {"running"}, 30)[0] == "running"
    short = client.submit_async(interactive, "SELECT 1 AS one")
    behind = client.submit_async(shared, "SELECT 1 AS one")  # the same query on the shared database
    while (state := client.query(short.query_id)["status"]) not in ("success", "failed"):
        assert time.monotonic() - short.started < 10, f"lane query still {state}"
        time.sleep(0.02)
    took = time.monotonic() - short.started
    behind_state = client.query(behind.query_id)["status"]
    print(f"\nlane: SELECT 1 {state} {took:.2f}s after its submit; the shared one was {behind_state}")
    assert state == "success", client.query(short.query_id).get("error_message")
    assert took < 1.0, f"the lane's SELECT 1 took {took:.2f}s"
    assert behind_state == "pending", "the shared worker was not full: the test would pass without the lane"
    logs = watchdog_stack.state_dir / "logs"
    ran_on = f"Query {short.query_id}: Set query to 'running'"
    assert ran_on in (logs / "worker-interactive.log").read_text()
    assert ran_on not in (logs / "worker.log").read_text()
    # A lane worker that dies is restarted like the worker, while the shared queries finish (that it
    # answers again is shown by the last test's ping).
    lane_worker = watchdog_stack.stack_json()["processes"]["worker-interactive"]
    os.kill(lane_worker["pid"], signal.SIGKILL)
    for query in (*blockers, behind):
        assert wait_status(client, query.query_id, {"success", "failed"}, 30)[0] == "success"
    deadline = time.monotonic() + 10
    while (restarted := watchdog_stack.stack_json()["processes"]["worker-interactive"])["restarts"] < 1:
        assert time.monotonic() < deadline, f"worker-interactive not restarted: {restarted}"
        time.sleep(0.2)
    assert restarted["last_exit_code"] == -signal.SIGKILL, restarted
    assert procfs.is_alive(restarted["pid"], restarted["start_ticks"]) and restarted["pid"] != lane_worker["pid"]


def test_a_task_a_dead_consumer_took_fails_its_query_while_the_worker_lives(watchdog_stack: Stack) -> None:
    # A worker host that dies while it waits for work: its BRPOP stays open in Redis, which hands it
    # the next message. Here a real Redis client plays that host: it asks for work, then never reads.
    settings = load_settings(watchdog_stack.settings_path)
    assert worker_ping(settings), "this test needs the stack's worker alive (it runs before the kill test)"
    r = settings.redis
    dead = redis.Connection(
        host=r.host,
        port=r.port,
        db=r.dbs.broker,
        password=read_secret("redis.password_file", r.password_file) if r.password_file else None,
    )
    dead.connect()
    try:
        dead.send_command("BRPOP", "celery", 0)
        time.sleep(1.5)  # the worker's own BRPOP (1 s) times out and queues behind this one
        client, database_id = client_of(watchdog_stack)
        submitted = client.submit_async(database_id, "SELECT 8 AS eight")
        status, _ = wait_status(client, submitted.query_id, {"failed", "success"}, IN_TRANSIT_BOUND + 30)
        waited = time.monotonic() - submitted.started
        taken = dead.read_response()
    finally:
        dead.disconnect()
    print(f"\nlost in transit: query {submitted.query_id} {status} after {waited:.1f}s (bound {IN_TRANSIT_BOUND:.0f}s)")
    assert taken and b"sql_lab.get_sql_results" in taken[1], "the dead consumer did not take the task"
    assert status == "failed", f"query {status}, not failed (success: the fault was not reproduced)"
    assert waited <= IN_TRANSIT_BOUND + MARGIN, f"failed after {waited:.1f}s, over {IN_TRANSIT_BOUND + MARGIN:.0f}s"
    message = str(client.query(submitted.query_id)["error_message"])
    assert message.startswith(IN_TRANSIT_PREFIX), message
    # The live worker still runs the next query.
    again = client.submit_async(database_id, "SELECT 9 AS nine")
    assert wait_status(client, again.query_id, {"success", "failed"}, 60)[0] == "success"


def test_no_worker_fails_the_query_within_the_bound_with_the_fix(watchdog_stack: Stack) -> None:
    settings = load_settings(watchdog_stack.settings_path)
    # Stopped and kept stopped (the runner would restart a killed worker within seconds).
    stopped = watchdog_stack.cli("stop-role", "worker")
    assert stopped.code == 0, stopped.stdout + stopped.stderr
    worker = watchdog_stack.stack_json()["processes"]["worker"]
    assert worker["supervision"] == "held"
    assert not procfs.group_members(worker["pgid"]), "the worker's process group outlived stop-role"
    # Only the lane's worker answers: it does not consume the shared queue, so the query must fail all the same.
    assert [n.split("@")[0] for n in worker_ping(settings)] == ["lane_interactive"]

    client, database_id = client_of(watchdog_stack)
    since_ms = int(time.time() * 1000)
    submitted = client.submit_async(database_id, "SELECT 7 AS seven")
    status, _ = wait_status(client, submitted.query_id, {"failed", "success"}, BOUND + 30)
    waited = time.monotonic() - submitted.started  # from before the submit, as a person counts
    print(f"\nno worker: query {submitted.query_id} {status} after {waited:.1f}s (bound {BOUND:.0f}s)")
    assert status == "failed"
    assert TIMEOUT <= waited <= BOUND + MARGIN, f"failed after {waited:.1f}s, outside [{TIMEOUT}, {BOUND + MARGIN}]"
    message = str(client.query(submitted.query_id)["error_message"])
    assert message.startswith(FAILURE_PREFIX), message
    assert "systemctl start superset-async-worker" in message and "superset-async up" in message

    # What SQL Lab's UI polls: the row comes back as changed, failed, with the error in extra.errors.
    rows = client.get("api/v1/query/updated_since", q=f"(last_updated_ms:{since_ms})")["result"]
    row = next(r for r in rows if r["queryId"] == submitted.query_id)
    assert (row["state"], row["errorMessage"]) == ("failed", message)
    assert [e["message"] for e in row["extra"]["errors"]] == [message]
    assert row["endDttm"] is not None
