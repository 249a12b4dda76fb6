"""Many async SQL Lab queries submitted at once through the REST API, and what became of each.

Used by tests/python/test_load.py (which asserts) and bench/load.py (which measures); never by
`verify`. Each query is distinct (`SELECT <i> AS n, name, '<tag>' AS run FROM demo.cities`), so its
rows say whose they are, and the run's tag finds exactly this run's queries in Superset's query list.

One thread per query submits it, all released together by a barrier, each with its own HTTP session
copied from one login (requests.Session is not thread-safe; one login per thread would measure
password hashing instead). One poller follows `GET /api/v1/query/updated_since`, as SQL Lab's UI does,
so that 200 waiting clients do not themselves become the load.
"""

from __future__ import annotations

import math
import re
import secrets
import statistics
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .verify.client import TERMINAL, SupersetApiError, SupersetClient

POLL_SECONDS = 0.2  # the resolution of each query's latency
RESULT_FETCHERS = 8  # threads fetching results once every query ended (the web has 2 x 4 threads)
LOCKED = "database is locked"
_STORED = re.compile(r"Query (\d+): Successfully stored results in backend")
_RUNNING = re.compile(r"Query (\d+): Set query to 'running'")


def load_sql(tag: str, index: int) -> str:
    # index is an int and tag is "load_" + hex: nothing of a caller's text reaches the SQL.
    return f"SELECT {index} AS n, name, '{tag}' AS run FROM demo.cities ORDER BY id"  # noqa: S608


def expected_rows(tag: str, index: int, names: Sequence[str]) -> list[list[Any]]:
    """The rows `load_sql(tag, index)` returns for a table whose names, ordered by id, are `names`."""
    return [[index, name, tag] for name in names]


@dataclass(frozen=True)
class LoadQuery:
    """One submission: its query, the state it ended in, its rows, seconds from submit to that state."""

    index: int
    query_id: int | None  # None: the submit itself was refused
    state: str  # a terminal state, "unfinished" (still running at the deadline) or "not submitted"
    seconds: float | None
    rows: list[list[Any]]
    error: str | None = None


@dataclass(frozen=True)
class LoadRun:
    """A whole run: its tag, every submission, and the wall time from the barrier to the last end seen."""

    tag: str
    queries: tuple[LoadQuery, ...]
    wall_seconds: float
    submit_seconds: float  # from the barrier to the last 202

    def latencies(self) -> list[float]:
        return sorted(q.seconds for q in self.queries if q.state == "success" and q.seconds is not None)

    def percentiles(self) -> dict[str, float]:
        return percentiles(self.latencies())

    def summary(self) -> str:
        states = Counter(q.state for q in self.queries)
        p = self.percentiles()
        times = ", ".join(f"{k} {v:.2f} s" for k, v in p.items())
        return (
            f"{len(self.queries)} queries at once ({self.tag}): {dict(states)}; wall {self.wall_seconds:.2f} s "
            f"(all submitted in {self.submit_seconds:.2f} s); submit -> success: {times}"
        )


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 (nearest rank) and max; empty when there are no values."""
    ordered = sorted(values)
    if not ordered:
        return {}

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return {"p50": statistics.median(ordered), "p90": rank(90), "p99": rank(99), "max": ordered[-1]}


_Submission = tuple[int | None, float, float, str | None]  # query id, before the POST, after it, error
_Ended = tuple[str, float, str | None, str | None]  # state, when seen, results key, error


class _Poller(threading.Thread):
    """Follows `updated_since` with the caller's own session; records the first terminal state seen."""

    def __init__(self, client: SupersetClient, tag: str, since_ms: int) -> None:
        super().__init__(name="load-poller", daemon=True)
        self.client, self.tag, self.since_ms = client, tag, since_ms
        self.ended: dict[int, _Ended] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                q = f"(last_updated_ms:{self.since_ms})"
                changed = self.client.get("api/v1/query/updated_since", q=q)["result"]
            except (SupersetApiError, OSError):
                changed = []  # the web is busy; the deadline decides
            now = time.monotonic()
            for query in changed:
                qid = query["queryId"]
                if query["state"] in TERMINAL and qid not in self.ended and self.tag in (query.get("sql") or ""):
                    self.ended[qid] = (query["state"], now, query.get("resultsKey"), query.get("errorMessage"))
            self.done.wait(POLL_SECONDS)


def _submit_all(sessions: list[SupersetClient], database_id: int, tag: str) -> tuple[list[_Submission], float]:
    """One thread per session, released together; returns each submission and when the barrier opened."""
    barrier = threading.Barrier(len(sessions) + 1)

    def submit(index: int) -> _Submission:
        barrier.wait()
        before = time.monotonic()
        try:
            submitted = sessions[index].submit_async(database_id, load_sql(tag, index), schema="demo", tab=tag)
        except (SupersetApiError, OSError) as err:
            return None, before, time.monotonic(), str(err)
        return submitted.query_id, before, time.monotonic(), None

    with ThreadPoolExecutor(max_workers=len(sessions), thread_name_prefix="load-submit") as pool:
        futures = [pool.submit(submit, i) for i in range(len(sessions))]
        barrier.wait()
        started = time.monotonic()
        return [f.result() for f in futures], started


def run_load(client: SupersetClient, database_id: int, n: int, timeout: float = 120) -> LoadRun:
    """Submit n distinct async queries at once, follow them to an end, fetch each one's results."""
    tag = f"load_{secrets.token_hex(4)}"
    # changed_on may be stored in whole seconds: a second of margin catches the first query.
    poller = _Poller(client, tag, int(time.time() * 1000) - 1000)
    sessions = [client.session_copy(timeout=max(client.timeout, timeout)) for _ in range(n)]
    for session in sessions:
        # gunicorn closes a keep-alive connection idle 2 s; a GET that races that close is sent again once.
        # A POST never is: a submit is sent exactly once.
        retry = Retry(total=1, allowed_methods=frozenset({"GET"}), status=0, backoff_factor=0)
        session.http.mount("http://", HTTPAdapter(max_retries=retry))
    poller.start()
    submissions, started = _submit_all(sessions, database_id, tag)
    ours = {s[0] for s in submissions if s[0] is not None}
    deadline = time.monotonic() + timeout
    while not ours <= poller.ended.keys() and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    poller.done.set()
    poller.join()
    ended = dict(poller.ended)
    last_end = max((ended[qid][1] for qid in ours if qid in ended), default=time.monotonic())

    def outcome(index: int) -> LoadQuery:
        qid, before, _, submit_error = submissions[index]
        if qid is None:
            return LoadQuery(index, None, "not submitted", None, [], submit_error)
        if qid not in ended:
            return LoadQuery(index, qid, "unfinished", None, [], f"not ended after {timeout} s")
        state, when, key, error = ended[qid]
        rows: list[list[Any]] = []
        if state == "success":
            if key is None:
                error = "success without a results key"
            else:
                try:
                    _, rows = sessions[index].results(key)
                except (SupersetApiError, OSError) as err:
                    error = f"results: {err}"
        return LoadQuery(index, qid, state, when - before, rows, error)

    with ThreadPoolExecutor(max_workers=RESULT_FETCHERS, thread_name_prefix="load-results") as pool:
        queries = tuple(pool.map(outcome, range(n)))
    for session in sessions:
        session.http.close()
    return LoadRun(tag, queries, last_end - started, max(s[2] for s in submissions) - started)


def listed_queries(client: SupersetClient, tag: str) -> Counter[str]:
    """How many rows Superset's query list (`GET /api/v1/query/`) holds for each client_id of the run."""
    counts: Counter[str] = Counter()
    page = 0
    while True:
        q = f"(columns:!(id,client_id,sql),filters:!((col:sql,opr:ct,value:'{tag}')),page:{page},page_size:100)"
        found = client.get("api/v1/query/", q=q)
        for row in found["result"]:
            counts[row["client_id"]] += 1
        if len(found["result"]) < 100:
            return counts
        page += 1


@dataclass(frozen=True)
class WorkerLog:
    """What the worker's log says it did, per query id."""

    running: Counter[int]  # "Query N: Set query to 'running'"
    stored: Counter[int]  # "Query N: Successfully stored results in backend"


def worker_log(text: str) -> WorkerLog:
    return WorkerLog(Counter(int(m) for m in _RUNNING.findall(text)), Counter(int(m) for m in _STORED.findall(text)))


def locked_lines(log_dir: Path) -> list[str]:
    """Every "database is locked" line in the stack's logs (SQLite metadata refusing a writer)."""
    found = []
    for path in sorted(log_dir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if LOCKED in line:
                found.append(f"{path.name}: {line.strip()[:300]}")
    return found
