"""Load: 50 and then 200 async SQL Lab queries submitted at once through the REST API, on a private stack
(SQLite metadata, the web's 2 gunicorn workers x 4 threads, one prefork worker with 4 processes).

Each one must end `success` with its own rows; none lost, none duplicated (one row per submission in
Superset's query list, one run and one stored result per query in the worker's log); and no "database
is locked" anywhere in the logs. Wall time and latency percentiles are printed (`pytest -s`), never
asserted: bench/load.py measures them (bench/results/load.md).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.stack import Stack, start_stack
from superset_async_glue.runner.demo import DEMO_ROWS
from superset_async_glue.sqllab_load import expected_rows, listed_queries, locked_lines, run_load, worker_log
from superset_async_glue.verify.client import SupersetClient

NAMES = [row[1] for row in DEMO_ROWS]
WORKER_PROCESSES = 4


@pytest.fixture(scope="module")
def load_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start_stack(tmp_path_factory.mktemp("load"), {"worker": {"concurrency": WORKER_PROCESSES}}) as stack:
        yield stack


@pytest.mark.parametrize("n", [50, 200])
def test_queries_at_once_each_end_once_with_their_own_rows(load_stack: Stack, n: int) -> None:
    client = SupersetClient(load_stack.web_url, load_stack.admin_username, load_stack.admin_password())
    database_id = client.database_id(load_stack.clickhouse_database_name)

    run = run_load(client, database_id, n)
    print(f"\n[load] {run.summary()}")

    wrong = [q for q in run.queries if q.state != "success" or q.error is not None]
    assert not wrong, f"{len(wrong)} of {n} did not end success: {wrong[:5]}"
    assert len({q.query_id for q in run.queries}) == n, "two submissions got one query id"
    for q in run.queries:
        assert q.rows == expected_rows(run.tag, q.index, NAMES), f"query {q.index} ({q.query_id}) got {q.rows[:2]}..."

    listed = listed_queries(client, run.tag)
    assert len(listed) == n and set(listed.values()) == {1}, f"query list: {len(listed)} client ids, {listed}"

    log = worker_log((load_stack.state_dir / "logs" / "worker.log").read_text(errors="replace"))
    ids = {q.query_id for q in run.queries if q.query_id is not None}
    ran = {qid: (log.running[qid], log.stored[qid]) for qid in ids}
    assert all(counts == (1, 1) for counts in ran.values()), {qid: c for qid, c in ran.items() if c != (1, 1)}

    logs = load_stack.state_dir / "logs"
    assert {"web.log", "worker.log"} <= {p.name for p in logs.glob("*.log")}, "the lock check reads no log"
    locked = locked_lines(logs)
    assert not locked, "SQLite metadata refused a writer:\n" + "\n".join(locked[:10])


def test_the_lock_check_reads_what_sqlite_says(tmp_path: Path) -> None:
    """locked_lines looks for the text SQLite's own "database is locked" error carries."""
    path = tmp_path / "metadata.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(sqlite3.OperationalError) as refused:
        sqlite3.connect(path, timeout=0).execute("INSERT INTO t VALUES (1)")
    holder.close()
    line = f"sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) {refused.value}"
    (tmp_path / "web.log").write_text(line + "\n")
    assert locked_lines(tmp_path) == [f"web.log: {line}"]
