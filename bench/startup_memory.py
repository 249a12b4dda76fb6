"""Start time, memory and async overhead: the seed's hand-made layout (A) against our runner (B).

Issue 15's measurements, side by side on one machine: each round starts A and B in turn (the order
alternates between rounds), each from a fresh state directory, and measures, for each:

  - first-ever start -> first async query (A: db upgrade, create-admin, init, start, the database
    registered through the API; B: `superset-async up`), wall and CPU time;
  - idle PSS of web, worker, beat and Redis (supervisor apart), 15 s after that first query and again
    after the query tests below;
  - async and sync `SELECT 1` on ClickHouse through SQL Lab's API, 10 each, interleaved, the async one
    polled every 50 ms, and where an async query's time goes (Superset's own timestamps in the query
    record, and the timestamps of the worker's log lines for each phase of the task);
  - 20 x `SELECT sleep(1)` at once on 4 worker slots, and a `SELECT 1` submitted 0.5 s later;
  - stop, then start again on the existing state -> first async query, wall and CPU time.

CPU time is user + system of the stack's processes (and of the children they and this script
waited for), read from /proc: on a machine shared with other work the wall times are noisy, the
CPU times much less so. Both layouts query one ClickHouse server started here (its time is in
neither). Results: bench/results/startup-memory.md (and .json, the raw numbers).

Usage (from the repository root, with the project's venv):
  .venv/bin/python bench/startup_memory.py              # 3 rounds
  .venv/bin/python bench/startup_memory.py --rounds 1 --output /tmp/x.md
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from superset_async_glue.verify.client import TERMINAL, SupersetApiError, SupersetClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from layouts import (
    CONCURRENCY,
    LANE,
    LANE_CONCURRENCY,
    LANE_DATABASE,
    Layout,
    RunnerLayout,
    SeedLayout,
    SharedClickHouse,
)
from stack_procs import cpu_seconds, pss_by_role
from verify_speed import machine

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results" / "startup-memory.md"
DATABASE = "ClickHouse (demo)"
POLL = 0.05  # seconds between two looks at an async query (the 50 ms)
SETTLE = 15.0  # seconds of quiet before memory is read
LATENCY_REPEATS = 10
SLEEPERS = 20
START_TIMEOUT = 300.0
PSS_ROLES = ("web", "worker", "beat", "redis")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- SQL Lab through the API ---------------------------------------------------------------------
def execute_body(database_id: int, sql: str, run_async: bool, client_id: str) -> dict[str, Any]:
    return {
        "database_id": database_id,
        "sql": sql,
        "runAsync": run_async,
        "client_id": client_id,
        "schema": "demo",
        "tab": "bench",
        "sql_editor_id": "1",
        "queryLimit": 1000,
        "expand_data": True,
        "select_as_cta": False,
        "ctas_method": "TABLE",
        "templateParams": "{}",
    }


def async_query(
    client: SupersetClient, database_id: int, sql: str, timeout: float = 60
) -> tuple[float, dict[str, Any], dict[str, float]]:
    """Submit with runAsync, poll every 50 ms, fetch the rows: (seconds, the query's final record,
    where the client's time went: see protocol_parts)."""
    epoch = time.time() - time.monotonic()  # Superset's timestamps are epoch; ours monotonic
    submitted = client.submit_async(database_id, sql, schema="demo", tab="bench")
    accepted = time.monotonic()
    deadline = submitted.started + timeout
    polls = 0
    while True:
        record = client.query(submitted.query_id)
        polls += 1
        if record["status"] in TERMINAL:
            break
        if time.monotonic() > deadline:
            raise SupersetApiError(f"query {submitted.query_id}", 202, f"still {record['status']} after {timeout}s")
        time.sleep(POLL)
    seen = time.monotonic()
    if record["status"] != "success":
        raise SupersetApiError(f"query {submitted.query_id}", 200, f"{record['status']}: {record.get('error_message')}")
    _, rows = client.results(record["results_key"])
    if not rows:
        raise SupersetApiError(f"query {submitted.query_id}", 200, "success without rows")
    done = time.monotonic()
    parts = protocol_parts(record, epoch, submitted.started, accepted, seen, done, polls)
    return done - submitted.started, record, parts


def protocol_parts(  # noqa: PLR0917 - the five moments of one async query
    record: dict[str, Any], epoch: float, started: float, accepted: float, seen: float, done: float, polls: int
) -> dict[str, float]:
    """An async query's time as the client sees it: the submit request (the web creates the query,
    commits it and publishes the task), accepted -> the task ended (Superset's end_time: hand-off and
    task), the task ended -> a poll saw it (the polling interval's quantisation and the poll's own
    request), and the request for the rows (read from Redis, deserialised, sent as JSON)."""
    try:
        ended = float(record["end_time"]) / 1000 - epoch
    except (KeyError, TypeError, ValueError):
        return {}
    return {
        "proto_submit_s": accepted - started,
        "proto_to_task_end_s": ended - accepted,
        "proto_poll_lag_s": seen - ended,
        "proto_results_s": done - seen,
        "proto_polls": float(polls),
    }


# Superset's own log lines in the worker, in the order one SQL Lab task writes them.
TASK_MARKS = (
    ("received", "get_sql_results", "received"),
    ("running", "Set query to 'running'", ""),
    ("statement", "Running block", ""),
    ("storing", "Storing results in results backend", ""),
    ("stored", "Successfully stored results", ""),
    ("done", "get_sql_results", "succeeded"),
)
TASK_PHASES = (
    ("task_to_running_s", "received", "running"),
    ("task_engine_connect_s", "running", "statement"),
    ("task_execute_serialise_s", "statement", "storing"),
    ("task_store_redis_s", "storing", "stored"),
    ("task_status_commit_s", "stored", "done"),
)


def task_phases(log: Path, since: float, until: float) -> dict[str, float]:
    """Medians of each phase of the SQL Lab tasks the worker received between `since` and `until`
    (epoch seconds), from the timestamps of Superset's and Celery's INFO lines."""
    tasks: list[dict[str, float]] = []
    current: dict[str, float] | None = None
    for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
        if not line.startswith("[20"):
            continue
        try:
            when = datetime.datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=datetime.UTC)
        except ValueError:
            continue
        for mark, text, also in TASK_MARKS:
            if text in line and also in line:
                if mark == "received":
                    current = {}
                if current is not None:
                    current[mark] = when.timestamp()
                if mark == "done" and current is not None:
                    if len(current) == len(TASK_MARKS) and since <= current["received"] <= until:
                        tasks.append(current)
                    current = None
                break
    return {name: statistics.median(t[end] - t[start] for t in tasks) for name, start, end in TASK_PHASES if tasks}


def _log_lines(log: Path) -> list[tuple[float, str]]:
    """(epoch seconds, line) of each timestamped line of a Celery worker log."""
    out = []
    for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
        if line.startswith("[20"):
            try:
                when = datetime.datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=datetime.UTC)
            except ValueError:
                continue
            out.append((when.timestamp(), line))
    return out


def slot_use(log: Path, since: float, until: float) -> dict[str, float]:
    """How the pool's slots spent the sleepers' run, from the worker log: each task's span in its child
    (first line -> Celery's 'succeeded'), the statement itself ('Running block' -> 'Storing results'),
    and each child's idle gap between the end of one task and its first line of the next."""
    spans: dict[str, list[tuple[float, float, float]]] = {}  # child -> (first line, statement, succeeded)
    open_: dict[str, dict[str, float]] = {}
    for when, line in _log_lines(log):
        if not since <= when <= until or "/ForkPoolWorker-" not in line:
            continue
        child = line.split("/", 1)[1].split("]", 1)[0]
        task = open_.setdefault(child, {"first": when})
        if "Running block" in line:
            task["statement"] = when
        elif "Storing results in results backend" in line:
            task["stored"] = when
        elif "get_sql_results" in line and "succeeded" in line:
            if "statement" in task and "stored" in task:
                spans.setdefault(child, []).append((task["first"], task["stored"] - task["statement"], when))
            del open_[child]
    if not spans:
        return {}
    tasks = [s for child in spans.values() for s in child]
    gaps = [b[0] - a[2] for child in spans.values() for a, b in itertools.pairwise(child)]
    return {
        "slot_task_span_s": statistics.median(end - first for first, _, end in tasks),
        "slot_statement_s": statistics.median(stmt for _, stmt, _ in tasks),
        "slot_gap_s": statistics.median(gaps) if gaps else 0.0,
        "slot_first_task_s": min(first for first, _, _ in tasks) - since,
    }


def sync_query(client: SupersetClient, database_id: int, sql: str) -> float:
    from superset_async_glue.verify.client import new_client_id  # noqa: PLC0415

    started = time.monotonic()
    body = client.post("api/v1/sqllab/execute/", execute_body(database_id, sql, False, new_client_id()))
    if body.get("status") != "success" or not body.get("data"):
        raise SupersetApiError("sync query", 200, str(body)[:200])
    return time.monotonic() - started


def phases(record: dict[str, Any]) -> dict[str, float]:
    """Where an async query's time went, from Superset's own timestamps (epoch ms in the query record)."""
    try:
        start, running, end = (float(record[k]) / 1000 for k in ("start_time", "start_running_time", "end_time"))
    except (KeyError, TypeError, ValueError):
        return {}
    return {"queued": running - start, "in_task": end - running}


# -- start to first async query ------------------------------------------------------------------
def register_database(client: SupersetClient, uri: str) -> int:
    """What a person does in the UI for A: add the database with async and SQL Lab on."""
    body = {"database_name": DATABASE, "sqlalchemy_uri": uri, "allow_run_async": True, "expose_in_sqllab": True}
    created = client.post("api/v1/database/", body, expect=(201,))
    return int(created["id"])


def first_async_query(
    layout: Layout, clickhouse: SharedClickHouse, marks: dict[str, float]
) -> tuple[SupersetClient, int]:
    """Log in as soon as the web answers, then run `SELECT 1` async until it returns its row.

    `marks` gets the monotonic times of the login and of the submit of the query that succeeded."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            client = SupersetClient(layout.base_url, layout.username, layout.password, timeout=60)
            break
        except (requests.RequestException, SupersetApiError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    marks["logged_in"] = time.monotonic()
    try:
        database_id = client.database_id(DATABASE)
    except SupersetApiError:
        if layout.registers_database:
            raise
        database_id = register_database(client, clickhouse.uri(with_password=True))
    while True:
        try:
            marks["submitted"] = time.monotonic()
            async_query(client, database_id, "SELECT 1", timeout=START_TIMEOUT)
            return client, database_id
        except SupersetApiError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def timed_start(
    layout: Layout, clickhouse: SharedClickHouse
) -> tuple[float, float, dict[str, float], SupersetClient, int]:
    """(wall seconds, CPU seconds, when each step ended in seconds from the start command) from the
    start command to the first async query's rows."""
    children = _children_cpu()
    started = time.monotonic()
    layout.start()
    marks = {"command_returned": time.monotonic()}
    client, database_id = first_async_query(layout, clickhouse, marks)
    wall = time.monotonic() - started
    cpu = cpu_seconds(layout.sessions()) + _children_cpu() - children
    return wall, cpu, {k: v - started for k, v in marks.items()}, client, database_id


# -- queries on a running stack ------------------------------------------------------------------
def latencies(client: SupersetClient, database_id: int, worker_log: Path) -> dict[str, Any]:
    since = time.time()
    async_s, sync_s, queued, in_task = [], [], [], []
    parts: dict[str, list[float]] = {}
    for _ in range(LATENCY_REPEATS):
        seconds, record, protocol = async_query(client, database_id, "SELECT 1")
        async_s.append(seconds)
        for key, value in protocol.items():
            parts.setdefault(key, []).append(value)
        split = phases(record)
        if split:
            queued.append(split["queued"])
            in_task.append(split["in_task"])
        sync_s.append(sync_query(client, database_id, "SELECT 1"))
    out = {"async_s": statistics.median(async_s), "sync_s": statistics.median(sync_s)}
    out |= {key: statistics.median(values) for key, values in parts.items()}
    if queued:
        out |= {"async_queued_s": statistics.median(queued), "async_in_task_s": statistics.median(in_task)}
    return out | task_phases(worker_log, since, time.time())


def sleepers(client: SupersetClient, database_id: int, short_database_id: int | None = None) -> dict[str, float]:
    """20 x `SELECT sleep(1)` at once, then `SELECT 1` 0.5 s later: wall of the 20, latency of the short one.

    The short one goes to `short_database_id` when given (a lane's database), else to the same one."""
    ended: dict[int, float] = {}
    stop = threading.Event()
    poller = client.session_copy()
    since = int(time.time() * 1000) - 1000

    def follow() -> None:
        while not stop.is_set():
            try:
                changed = poller.get("api/v1/query/updated_since", q=f"(last_updated_ms:{since})")["result"]
            except (SupersetApiError, OSError):
                changed = []
            now = time.monotonic()
            for query in changed:
                if query["state"] in TERMINAL:
                    ended.setdefault(int(query["queryId"]), now)
            stop.wait(POLL)

    sessions = [client.session_copy() for _ in range(SLEEPERS + 1)]
    watcher = threading.Thread(target=follow, daemon=True)
    watcher.start()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=SLEEPERS) as pool:
        futures = [
            pool.submit(s.submit_async, database_id, "SELECT sleep(1)", "demo", "bench") for s in sessions[:SLEEPERS]
        ]
        time.sleep(0.5)
        short_on = database_id if short_database_id is None else short_database_id
        short = sessions[SLEEPERS].submit_async(short_on, "SELECT 1", "demo", "bench")
        short_accepted = time.monotonic()
        long_ids = [f.result().query_id for f in futures]
    deadline = time.monotonic() + 120
    while not {*long_ids, short.query_id} <= ended.keys() and time.monotonic() < deadline:
        time.sleep(POLL)
    stop.set()
    watcher.join()
    missing = {*long_ids, short.query_id} - ended.keys()
    if missing:
        raise SupersetApiError("sleepers", 202, f"queries {sorted(missing)} not ended after 120 s")
    states = {qid: client.query(qid)["status"] for qid in [*long_ids, short.query_id]}
    if set(states.values()) != {"success"}:
        raise SupersetApiError("sleepers", 200, f"not all success: {states}")
    # Where the short one's time went: its submit request, then Superset's own timestamps (epoch) for
    # the wait until a task set it running and the task itself, then the follower's lag in seeing it.
    epoch = time.time() - time.monotonic()
    record = client.query(short.query_id)
    try:
        running, end = (float(record[k]) / 1000 - epoch for k in ("start_running_time", "end_time"))
    except (KeyError, TypeError, ValueError):
        running = end = float("nan")
    return {
        "sleepers_wall_s": max(ended[q] for q in long_ids) - started,
        "short_during_sleepers_s": ended[short.query_id] - short.started,
        "short_submit_s": short_accepted - short.started,
        "short_waited_s": running - short_accepted,
        "short_task_s": end - running,
        "short_seen_s": ended[short.query_id] - end,
    }


def idle_pss(layout: Layout) -> dict[str, float]:
    by_role = pss_by_role(layout.roles())
    out = {f"pss_{role}_mib": by_role[role] for role in (*PSS_ROLES, "supervisor") if role in by_role}
    out["pss_stack_mib"] = sum(by_role.get(role, 0.0) for role in PSS_ROLES)
    return out


def measure(layout: Layout, clickhouse: SharedClickHouse, say: Callable[[str], None]) -> dict[str, float]:
    m: dict[str, float] = {"load_before": os.getloadavg()[0]}
    try:
        wall, cpu, marks, client, database_id = timed_start(layout, clickhouse)
        m |= {"first_start_s": wall, "first_start_cpu_s": cpu} | {f"first_start_{k}_s": v for k, v in marks.items()}
        say(f"{layout.name}: first-ever start -> first async query {wall:.1f} s (CPU {cpu:.1f} s)")
        time.sleep(SETTLE)
        m |= {f"{k}_after_start": v for k, v in idle_pss(layout).items()}
        m |= latencies(client, database_id, layout.state / "logs" / "worker.log")
        since = time.time()
        m |= sleepers(client, database_id)
        m |= slot_use(layout.state / "logs" / "worker.log", since, time.time())
        time.sleep(SETTLE)
        m |= {f"{k}_after_use": v for k, v in idle_pss(layout).items()}
        say(f"{layout.name}: {json.dumps({k: round(v, 3) for k, v in m.items()})}")
    finally:
        layout.stop()
    try:
        wall, cpu, marks, _, _ = timed_start(layout, clickhouse)
        m |= {"restart_s": wall, "restart_cpu_s": cpu, "load_after": os.getloadavg()[0]}
        m |= {f"restart_{k}_s": v for k, v in marks.items()}
        say(f"{layout.name}: start with existing state -> first async query {wall:.1f} s (CPU {cpu:.1f} s)")
    finally:
        layout.stop()
    return m


def measure_lane(root: Path, clickhouse: SharedClickHouse, say: Callable[[str], None]) -> dict[str, float]:
    """B with a lane (sql_lab.lanes): the 20 sleepers on the shared database and the short query on the
    lane's, which has a worker of its own. A stack of its own, after B's measurements: the lane worker
    is a third Superset app, which the start and memory figures of B (equal concurrency with A) leave out."""
    layout = RunnerLayout(root, clickhouse, lane=True)
    m: dict[str, float] = {}
    try:
        _, _, _, client, database_id = timed_start(layout, clickhouse)
        lane_database_id = client.database_id(LANE_DATABASE)
        async_query(client, lane_database_id, "SELECT 1")  # the lane worker's first task, as after any start
        m |= {f"lane_{k}": v for k, v in sleepers(client, database_id, lane_database_id).items()}
        time.sleep(SETTLE)
        m["pss_lane_worker_mib"] = pss_by_role(layout.roles())[f"worker-{LANE}"]
        say(f"B+lane: {json.dumps({k: round(v, 3) for k, v in m.items()})}")
    finally:
        layout.stop()
    return m


# -- report --------------------------------------------------------------------------------------
ROWS: tuple[tuple[str, str, str], ...] = (
    ("restart_s", "start with existing state -> first async query, wall", "s"),
    ("restart_cpu_s", "… CPU time (user+sys) of the stack", "s"),
    ("restart_command_returned_s", "… the start command returned (B: `up` reported READY)", "s"),
    ("restart_logged_in_s", "… the client logged in (the web answers)", "s"),
    ("restart_submitted_s", "… the first async query submitted", "s"),
    ("first_start_s", "first-ever start -> first async query, wall", "s"),
    ("first_start_cpu_s", "… CPU time (user+sys) of the stack", "s"),
    ("first_start_command_returned_s", "… the start command returned (A: after its db upgrade, init)", "s"),
    ("first_start_logged_in_s", "… the client logged in", "s"),
    ("first_start_submitted_s", "… the first async query submitted", "s"),
    ("pss_stack_mib_after_start", "idle PSS web + worker + beat + Redis, after start", "MiB"),
    ("pss_web_mib_after_start", "… web (gunicorn master + 2 workers)", "MiB"),
    ("pss_worker_mib_after_start", "… worker (main + 4 prefork children)", "MiB"),
    ("pss_beat_mib_after_start", "… beat", "MiB"),
    ("pss_redis_mib_after_start", "… Redis", "MiB"),
    ("pss_supervisor_mib_after_start", "runner's supervisor (B only, not in the sum)", "MiB"),
    ("pss_stack_mib_after_use", "idle PSS web + worker + beat + Redis, after the queries", "MiB"),
    ("async_s", "async `SELECT 1`, submit -> rows (50 ms polling)", "s"),
    ("sync_s", "sync `SELECT 1`", "s"),
    ("async_over_sync", "async / sync", ""),
    ("proto_submit_s", "… async, client: the submit request (202)", "s"),
    ("proto_to_task_end_s", "… async, client: 202 -> task ended (hand-off and task)", "s"),
    ("proto_poll_lag_s", "… async, client: task ended -> a poll saw it (quantisation + request)", "s"),
    ("proto_results_s", "… async, client: the request for the rows", "s"),
    ("proto_polls", "… async, client: status requests per query", ""),
    ("async_queued_s", "… async: submit -> task running (Superset's timestamps)", "s"),
    ("async_in_task_s", "… async: task running -> query ended", "s"),
    ("task_to_running_s", "… worker log: task received -> query set running", "s"),
    ("task_engine_connect_s", "… worker log: set running -> statement starts (engine, connection)", "s"),
    ("task_execute_serialise_s", "… worker log: statement -> results ready (execute, fetch, serialise)", "s"),
    ("task_store_redis_s", "… worker log: results written to Redis", "s"),
    ("task_status_commit_s", "… worker log: stored -> task succeeded (status commit)", "s"),
    ("sleepers_wall_s", f"{SLEEPERS} x `SELECT sleep(1)` at once, {CONCURRENCY} slots (ideal 5 s)", "s"),
    ("slot_first_task_s", "… the first task's first line in a pool child, after the submits began", "s"),
    ("slot_task_span_s", "… one task in its child: first line -> succeeded", "s"),
    ("slot_statement_s", "… of which the statement (`sleep(1)` on ClickHouse)", "s"),
    ("slot_gap_s", "… a child's idle gap between two tasks (hand-off)", "s"),
    ("short_during_sleepers_s", "`SELECT 1` submitted 0.5 s into them, submit -> success", "s"),
    ("short_submit_s", "… its submit request (until the 202)", "s"),
    ("short_waited_s", "… 202 -> a task set it running (its wait for a slot)", "s"),
    ("short_task_s", "… running -> ended (the task)", "s"),
    ("short_seen_s", "… ended -> the follower's poll saw it", "s"),
    (
        "lane_short_during_sleepers_s",
        f"… the same `SELECT 1` on a lane's database (sql_lab.lanes, {LANE_CONCURRENCY} slot of its own)",
        "s",
    ),
    ("lane_short_submit_s", "… lane: its submit request (until the 202)", "s"),
    ("lane_short_waited_s", "… lane: 202 -> a task set it running", "s"),
    ("lane_short_task_s", "… lane: running -> ended (the task)", "s"),
    ("lane_short_seen_s", "… lane: ended -> the follower's poll saw it", "s"),
    ("lane_sleepers_wall_s", "… the 20 meanwhile, with the lane", "s"),
    ("pss_lane_worker_mib", f"… the lane's worker, idle PSS (main + {LANE_CONCURRENCY} child; not in the sums)", "MiB"),
)


# A's start command spawns and returns; B's returns once the stack is ready: no ratio means anything.
NOT_COMPARABLE = {"restart_command_returned_s", "first_start_command_returned_s"}


def _cell(values: list[float], unit: str) -> str:
    if not values:
        return "-"
    fmt = "{:.0f}" if unit == "MiB" else "{:.3f}" if unit in ("s", "") and max(values) < 10 else "{:.1f}"
    med = fmt.format(statistics.median(values))
    rng = f" ({fmt.format(min(values))}-{fmt.format(max(values))})" if len(values) > 1 else ""
    return f"{med}{(' ' + unit) if unit else ''}{rng}"


def report(runs: dict[str, list[dict[str, float]]], started: str, loads: list[float], label: str) -> str:
    for layout_runs in runs.values():
        for m in layout_runs:
            if "async_s" in m and "sync_s" in m:
                m["async_over_sync"] = m["async_s"] / m["sync_s"]
    lines = []
    for key, text, unit in ROWS:
        a = [m[key] for m in runs["A"] if key in m]
        b = [m[key] for m in runs["B"] if key in m]
        comparable = a and b and statistics.median(a) and key not in NOT_COMPARABLE
        ratio = f"{statistics.median(b) / statistics.median(a):.2f}" if comparable else "-"
        if not a and not b:
            continue
        lines.append(f"| {text} | {_cell(a, unit)} | {_cell(b, unit)} | {ratio} |")
    table = "\n".join(lines)
    load_at = ", ".join(f"{m['load_before']:.1f}" for layout_runs in runs.values() for m in layout_runs)
    n = max(len(runs["A"]), len(runs["B"]))
    return f"""# Start time, memory and async overhead: seed layout (A) vs runner (B){label}

Measured {started} by `bench/startup_memory.py` on {machine()}.
{n} round(s); each round starts A and B in turn from fresh state directories (the order alternates
between rounds). Medians, with min-max over the rounds; B/A is the ratio of the medians.

**The machine is shared** with other engineers' tests while this runs: wall times are noisy, CPU
times (user + system of the stack's processes, from /proc) much less so. 1-minute load average
{loads[0]:.2f} at the start, {loads[1]:.2f} at the end; at the start of each layout's measurement: {load_at}.

A: the seed's hand-made layout (plain superset_config.py; Redis DB 0 broker, 1 results, 2 cache,
3 data cache, 4 GAQ; gunicorn 2 workers x 4 gthread threads; `celery worker --pool=prefork -O fair
-c {CONCURRENCY}`; `celery beat`; Redis with its default persistence). B: `superset-async up` with
the demo settings and worker.concurrency {CONCURRENCY} (same web and worker sizes; Redis AOF with
`appendfsync always`; bootstrap at every start, without importing Superset when nothing changed;
beat on a bare Celery app; web preloaded; gc.freeze before forks; worker without mingle and ready
by notify; a new SQLite metadata DB migrated without an fsync per script, then kept in WAL mode
with a pool of open connections). Same virtualenv and lock; both query one ClickHouse server
started by the benchmark, SQLite metadata (A: SQLAlchemy's and SQLite's defaults). The lane rows
(B only) come from a second B stack per round with `sql_lab.lanes`: the demo ClickHouse declared
again as "{LANE_DATABASE}", its queries on lane `{LANE}` with {LANE_CONCURRENCY} slot of its own.

| figure | A | B | B/A |
|---|---|---|---|
{table}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of A and B (default 3)")
    parser.add_argument("--output", type=Path, default=OUT, help=f"Markdown report (default {OUT.name})")
    parser.add_argument("--label", default="", help="a note appended to the report's title")
    parser.add_argument("--keep", action="store_true", help="keep the state directories (for their logs)")
    parser.add_argument(
        "--docs",
        action="store_true",
        help="also copy the table into docs/performance.md and docs/es/performance.md (bench/docs_tables.py)",
    )
    parser.add_argument(
        "--plots",
        type=Path,
        default=None,
        help="also draw the PNGs of docs/performance.md into this directory (bench/plot.py), e.g. docs/images",
    )
    parser.add_argument(
        "--only", choices=("A", "B"), help="measure one layout (e.g. B with a changed glue on PYTHONPATH)"
    )
    parser.add_argument("--no-lane", action="store_true", help="skip B's lane variant (about 40 s a round)")
    args = parser.parse_args()
    if args.docs and args.only:
        parser.error("--docs copies a comparison into the guides: run both layouts (drop --only)")
    root = Path(tempfile.mkdtemp(prefix="startup-bench-"))
    root.chmod(0o700)
    say = lambda line: print(line, flush=True)  # noqa: E731
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    loads = [os.getloadavg()[0]]
    clickhouse = SharedClickHouse(root / "clickhouse")
    clickhouse.start()
    runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    try:
        for i in range(args.rounds):
            for name in ("A", "B") if i % 2 == 0 else ("B", "A"):
                if args.only and name != args.only:
                    continue
                layout: Layout = SeedLayout(root / f"A{i}") if name == "A" else RunnerLayout(root / f"B{i}", clickhouse)
                runs[name].append(measure(layout, clickhouse, say))
                if name == "B" and not args.no_lane:
                    runs[name][-1] |= measure_lane(root / f"B{i}-lane", clickhouse, say)
    finally:
        clickhouse.stop()
        if args.keep:
            say(f"state kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    loads.append(os.getloadavg()[0])
    text = report(runs, started, loads, f" ({args.label})" if args.label else "")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    args.output.with_suffix(".json").write_text(json.dumps(runs, indent=1, sort_keys=True) + "\n")
    print(text)
    if args.docs:
        from docs_tables import update  # noqa: PLC0415

        for path in update(text):
            say(f"table: {path}")
    if args.plots is not None:
        from plot import draw  # noqa: PLC0415 - matplotlib only when plots are asked for

        for path in draw(runs, args.plots):
            say(f"plot: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
