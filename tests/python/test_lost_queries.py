"""A query whose Celery task was lost ends `failed` with a message saying what happened and what to do.

Two faults on one private stack (async limit 5 s, hard grace 2 s, running grace 5 s, one worker
child), in this order:

1. The busy prefork child is SIGKILLed mid-query (out of memory, a kill): the worker's main process
   reports task_failure with WorkerLostError and the lost-task handler fails the query at once.
2. The whole worker is SIGKILLed, main process and child (its host gone: nothing reports anything):
   the web's sweep fails the query once it has been running longer than its hard time limit plus
   the running grace.

Plus what the worker really runs with: Celery's effective conf, asked of the running worker.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.stack import Stack, start_stack
from fixtures.superset_api import SupersetClient
from superset_async_glue import procfs
from superset_async_glue.loading import load_settings
from superset_async_glue.render import running_timeout_seconds, visibility_timeout
from superset_async_glue.runner.readiness import broker_tcp_url
from superset_async_glue.sqllab_watchdog import LOST_PREFIX, OVERDUE_PREFIX, SWEEP_INTERVAL_SECONDS, lost_message

ASYNC_LIMIT, HARD_GRACE, RUNNING_GRACE = 5, 2, 5
RUNNING_TIMEOUT = ASYNC_LIMIT + HARD_GRACE + RUNNING_GRACE  # 12 s
OVERDUE_BOUND = RUNNING_TIMEOUT + SWEEP_INTERVAL_SECONDS  # 17 s after the worker set it running
LOST_BOUND = 5.0  # the worker's main process sees its child's exit at once; measured about 0.1 s
MARGIN = 3.0  # polling, SQLite commit, a loaded 2-core machine
SLOW_SQL = "SELECT sleep(3) AS slept"  # under the 5 s limit: only the fault can stop it


@pytest.fixture(scope="module")
def lost_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides = {
        "sql_lab": {
            "timeout_seconds": ASYNC_LIMIT,
            "async_time_limit_seconds": ASYNC_LIMIT,
            "hard_time_limit_grace_seconds": HARD_GRACE,
            "running_grace_seconds": RUNNING_GRACE,
        },
        "worker": {"concurrency": 1},
    }
    with start_stack(tmp_path_factory.mktemp("lost"), overrides) as stack:
        yield stack


def client_of(stack: Stack) -> tuple[SupersetClient, int]:
    client = SupersetClient(stack.web_url, stack.admin_username, stack.admin_password())
    return client, client.database_id(stack.clickhouse_database_name)


def wait_status(client: SupersetClient, query_id: int, wanted: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = str(client.query(query_id)["status"])
        if status in wanted or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def children_of(pid: int) -> list[int]:
    """Live child processes of `pid` (field 4 of /proc/PID/stat is the parent's pid)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def assert_shown_failed(client: SupersetClient, query_id: int, since_ms: int, prefix: str) -> str:
    """The query is failed where SQL Lab's UI reads it (updated_since: state, errorMessage, extra.errors)."""
    message = str(client.query(query_id)["error_message"])
    assert message.startswith(prefix), message
    rows = client.get("api/v1/query/updated_since", q=f"(last_updated_ms:{since_ms})")["result"]
    row = next(r for r in rows if r["queryId"] == query_id)
    assert (row["state"], row["errorMessage"]) == ("failed", message)
    assert [e["message"] for e in row["extra"]["errors"]] == [message]
    assert row["endDttm"] is not None
    return message


def test_the_worker_runs_with_the_rendered_reliability_settings(lost_stack: Stack) -> None:
    from celery import Celery  # noqa: PLC0415

    settings = load_settings(lost_stack.settings_path)
    probe = Celery("lost-queries-probe", broker=broker_tcp_url(settings), set_as_current=False)
    try:
        replies: dict[str, dict[str, Any]] = probe.control.inspect(timeout=3).conf() or {}
    finally:
        probe.close()
    assert len(replies) == 1, replies
    conf = next(iter(replies.values()))
    assert conf["broker_transport_options"] == {"visibility_timeout": visibility_timeout(settings)}
    assert (conf["task_acks_late"], conf["task_reject_on_worker_lost"], conf["worker_prefetch_multiplier"]) == (
        False,
        False,
        1,
    )
    assert running_timeout_seconds(settings) == RUNNING_TIMEOUT


def test_a_killed_worker_child_fails_its_query_at_once(lost_stack: Stack) -> None:
    client, database_id = client_of(lost_stack)
    worker_pid = lost_stack.stack_json()["processes"]["worker"]["pid"]
    since_ms = int(time.time() * 1000)
    submitted = client.submit_async(database_id, SLOW_SQL)
    assert wait_status(client, submitted.query_id, {"running", "success", "failed"}, 30) == "running"
    time.sleep(max(0.0, submitted.started + 1.0 - time.monotonic()))  # about 1 s into the query
    children = children_of(worker_pid)
    assert len(children) == 1, f"expected the one prefork child of worker {worker_pid}, found {children}"
    os.kill(children[0], signal.SIGKILL)
    killed = time.monotonic()
    status = wait_status(client, submitted.query_id, {"failed", "success"}, LOST_BOUND + 30)
    waited = time.monotonic() - killed
    print(f"\nchild killed: query {submitted.query_id} {status} {waited:.2f}s after the kill (bound {LOST_BOUND}s)")
    assert status == "failed", "the query outlived its killed worker child (it would stay running forever)"
    assert waited <= LOST_BOUND + MARGIN
    message = assert_shown_failed(client, submitted.query_id, since_ms, LOST_PREFIX)
    assert "killed by signal 9 (SIGKILL)" in message and "Run the query again" in message, message
    # The worker forked a new child and serves the next query.
    outcome = client.run_async(database_id, "SELECT 1 AS one", timeout=60)
    assert (outcome.state, outcome.rows) == ("success", [[1]]), outcome.error


def test_a_query_no_worker_reports_fails_after_its_hard_limit_and_grace(lost_stack: Stack) -> None:
    client, database_id = client_of(lost_stack)
    worker = lost_stack.stack_json()["processes"]["worker"]
    since_ms = int(time.time() * 1000)
    submitted = client.submit_async(database_id, SLOW_SQL)
    assert wait_status(client, submitted.query_id, {"running", "success", "failed"}, 30) == "running"
    running_seen = time.monotonic()  # the worker set start_running_time before this
    # The whole worker (main process and child) dies at once, as when its host loses power: no
    # process is left to report the loss, and the task was acknowledged when it started, so the
    # broker never re-delivers it. (Freezing it with SIGSTOP instead is no model of a lost host
    # on SQLite metadata: the frozen child can hold the SQLite lock and the web answers 500.)
    assert procfs.signal_group(worker["pgid"], signal.SIGKILL)
    status = wait_status(client, submitted.query_id, {"failed", "success"}, OVERDUE_BOUND + 30)
    ended = time.monotonic()
    print(
        f"\nworker gone: query {submitted.query_id} {status} {ended - submitted.started:.1f}s after submit, "
        f"{ended - running_seen:.1f}s after running was seen (bound {OVERDUE_BOUND:.0f}s)"
    )
    assert status == "failed", "a query whose worker vanished stayed running"
    assert ended - submitted.started >= RUNNING_TIMEOUT, "failed before its hard time limit and grace"
    assert ended - running_seen <= OVERDUE_BOUND + MARGIN
    message = assert_shown_failed(client, submitted.query_id, since_ms, OVERDUE_PREFIX)
    assert f"within {RUNNING_TIMEOUT} s" in message and "Run the query again" in message, message


def test_the_lost_message_tells_a_hard_time_limit_from_a_lost_process() -> None:
    from celery.exceptions import WorkerLostError  # noqa: PLC0415

    lost = WorkerLostError("Worker exited prematurely: signal 9 (SIGKILL) Job: 0.")
    assert "killed by signal 9 (SIGKILL): e.g. out of memory" in lost_message(lost, 1.0, ASYNC_LIMIT)
    term = WorkerLostError("Worker exited prematurely: signal 15 (SIGTERM) Job: 2.")
    past = lost_message(term, 7.2, ASYNC_LIMIT, ASYNC_LIMIT + HARD_GRACE)
    assert "past its time limit of 5 s: Celery's hard time limit stopped it" in past, past
    # measured late on a loaded host (5.5 s) but before the hard limit (7 s) could strike: not blamed on it
    early = lost_message(lost, 5.5, ASYNC_LIMIT, ASYNC_LIMIT + HARD_GRACE)
    assert "killed by signal 9 (SIGKILL): e.g. out of memory" in early, early
    assert "exited with code 1" in lost_message(WorkerLostError("Worker exited prematurely: exitcode 1 Job: 3."))
