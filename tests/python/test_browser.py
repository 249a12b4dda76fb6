"""Superset as a person uses it: a real headless Chromium against real stacks (issue 10).

The session's shared stack serves the login form, SQL Lab and the async dashboard; one private
stack (`browser_fault_stack`) takes the failures a person meets: Redis stopped (and back), then
workers stopped. Screenshots of every step: .artifacts/browser/<test>/ (fixtures/browser.py).
`SUPERSET_ASYNC_DOCS_SCREENSHOTS=docs/images` also refreshes the documentation's screenshots.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fixtures.browser import (
    PENDING_TIMEOUT,
    Browser,
    BrowserFactory,
    CitiesDashboard,
    FaultStack,
    SqlLab,
    find_binaries,
)
from fixtures.stack import Stack
from superset_async_glue.runner.demo import DEMO_ROWS
from superset_async_glue.verify.client import SupersetClient

CITY_NAMES = [name for _, name, _, _ in DEMO_ROWS]
COUNTRIES = [country for _, _, country, _ in DEMO_ROWS]


def logged_in(open_browser: BrowserFactory, stack: Stack) -> Browser:
    browser = open_browser(stack)
    browser.login(stack.admin_username, stack.admin_password())
    browser.wait_logged_in()
    return browser


def sql_lab_tab(browser: Browser, stack: Stack, sql: str) -> SqlLab:
    """SQL Lab, a new tab, the demo database picked and `sql` typed in."""
    lab = SqlLab(browser)
    lab.open()
    lab.new_tab()
    lab.pick_database(stack.clickhouse_database_name)
    lab.set_sql(sql)
    return lab


def last_query(stack: Stack, sql: str) -> dict[str, Any]:
    """The newest SQL Lab query with exactly this SQL, as Superset's REST API reports it."""
    client = SupersetClient(stack.web_url, stack.admin_username, stack.admin_password())
    listed = client.get(
        "api/v1/query/",
        q="(columns:!(id,sql,status),order_column:start_time,order_direction:desc,page:0,page_size:50)",
    )["result"]
    ids = [row["id"] for row in listed if row["sql"].strip() == sql]
    assert ids, f"no query {sql!r} among {[row['sql'] for row in listed]}"
    return client.query(int(ids[0]))


def assert_ran_on_the_worker(stack: Stack, sql: str) -> dict[str, Any]:
    """The query succeeded with a results_key, and the worker's log says it stored those results."""
    query = last_query(stack, sql)
    assert query["status"] == "success", query
    assert query["results_key"], f"no results_key: the query did not run asynchronously: {query}"
    stored = f"Query {query['id']}: Successfully stored results in backend, key: {query['results_key']}"
    worker_log = (stack.state_dir / "logs" / "worker.log").read_text(errors="replace")
    assert stored in worker_log, f"the worker log does not show {stored!r}"
    return query


def test_a_missing_chromium_or_chromedriver_fails_with_the_setup_hint(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"chromium, chromedriver not installed: run scripts/setup"):
        find_binaries(search=str(tmp_path))
    (tmp_path / "chromium").symlink_to(find_binaries()[0])
    with pytest.raises(pytest.fail.Exception, match=r"^chromedriver not installed: .*chromium-driver"):
        find_binaries(search=str(tmp_path))


# -- the shared stack ------------------------------------------------------------------------------


def test_login_form_refuses_a_wrong_password_with_superset_message_and_signs_in(
    stack: Stack, open_browser: BrowserFactory
) -> None:
    browser = open_browser(stack)
    browser.login(stack.admin_username, "not-the-password")
    toast = browser.visible('[data-test="toast-container"]')
    browser.wait(lambda d: "Invalid username or password" in toast.text, message=f"toast says {toast.text!r}")
    assert "/login" in browser.driver.current_url
    browser.shot("wrong-password")

    browser.open("login/")
    browser.visible('[data-test="username-input"]').send_keys(stack.admin_username)
    browser.visible('[data-test="password-input"]').send_keys(stack.admin_password())
    browser.shot("login-form", docs="login.png")
    browser.visible('[data-test="login-button"]').click()
    browser.wait_logged_in()
    assert "/superset/welcome/" in browser.driver.current_url
    browser.shot("welcome")


def test_sql_lab_runs_an_async_query_on_the_worker_shows_its_rows_and_history(
    stack: Stack, open_browser: BrowserFactory
) -> None:
    sql = "SELECT name, country, population FROM demo.cities ORDER BY population DESC"
    browser = logged_in(open_browser, stack)
    lab = sql_lab_tab(browser, stack, sql)
    browser.shot("new-tab-database-and-sql")

    lab.run()
    grid = lab.wait_rows(CITY_NAMES + COUNTRIES)
    assert "8 rows" in browser.text_of(SqlLab.ACTIVE + '[data-test="south-pane"]'), grid
    browser.shot("async-result", docs="sqllab-async-result.png")
    query = assert_ran_on_the_worker(stack, sql)

    history = lab.open_history(expect="SELECT name, country")
    ours = [row for row in history if "SELECT name, country" in row]
    assert "8" in ours[0].splitlines(), ours  # the Rows column
    browser.shot("query-history")
    # The UI asked for async: the execute request carried runAsync and got 202 (queued for a worker).
    executes = [x for x in browser.network() if x.method == "POST" and "/api/v1/sqllab/execute/" in x.url]
    assert [x.status for x in executes] == [202], (executes, query)


def test_dashboard_chart_is_loaded_through_global_async_queries_and_rendered(
    stack: Stack, open_browser: BrowserFactory, cities_dashboard: CitiesDashboard
) -> None:
    browser = logged_in(open_browser, stack)
    browser.forget_network()  # the login's requests
    browser.open(f"superset/dashboard/{cities_dashboard.dashboard_id}/")

    # Both charts rendered: the bar chart draws on a canvas (ECharts), the table shows every city.
    bars = browser.visible('[data-test="chart-container"] canvas')
    assert bars.size["width"] > 100 and bars.size["height"] > 100, bars.size
    table = '[data-test="chart-container"] table'
    browser.wait(
        lambda d: all(name in browser.text_of(table) for name in CITY_NAMES),
        message="the table chart does not show every city",
    )
    errors = browser.text_of('[data-test="chart-container"] .ant-alert-error, [data-test="chart-container"] .alert')
    assert not errors, errors
    browser.shot("async-dashboard", docs="dashboard-async-chart.png")

    # The GAQ round trip, as the browser made it: chart data 202 (a job), async_event (with the
    # async-token cookie) reporting the jobs done, then each cached result fetched.
    exchanges = browser.network()
    jobs = [x for x in exchanges if x.method == "POST" and "/api/v1/chart/data" in x.url]
    assert len(jobs) == 2 and {x.status for x in jobs} == {202}, jobs
    events = [x for x in exchanges if "/api/v1/async_event/" in x.url and x.status == 200]
    assert events, [x.url for x in exchanges]
    cookie = browser.driver.get_cookie("async-token")
    assert cookie is not None, browser.driver.get_cookies()
    sent = [x for x in events if "async-token=" in x.request_headers.get("Cookie", x.request_headers.get("cookie", ""))]
    assert sent, [x.request_headers for x in events]
    bodies = " ".join(browser.response_body(x.request_id) for x in events)
    assert '"status": "done"' in bodies or '"status":"done"' in bodies, bodies
    results = [x for x in exchanges if "/api/v1/chart/data/qc-" in x.url]
    assert len(results) == 2 and {x.status for x in results} == {200}, results


# -- the private stack: failures a person meets ----------------------------------------------------


def test_redis_stopped_sql_lab_shows_superset_message_and_the_next_query_works_once_redis_is_back(
    browser_fault_stack: FaultStack, open_browser: BrowserFactory
) -> None:
    stack = browser_fault_stack.stack
    sql = "SELECT country, name FROM demo.cities ORDER BY country"
    browser = logged_in(open_browser, stack)
    lab = sql_lab_tab(browser, stack, sql)

    browser_fault_stack.stop_role("redis")
    started = time.monotonic()
    lab.run()
    # About 20 s: the web's Celery Redis result backend retries 20 times, 1 s apart, before the 500.
    error = lab.wait_error(timeout=60)
    assert "Failed to start remote query on a worker." in error, error
    browser.shot("redis-stopped")
    print(f"Redis stopped: SQL Lab showed Superset's message after {time.monotonic() - started:.1f}s")

    browser_fault_stack.restart_redis()
    started = time.monotonic()
    lab.run()  # the same page: no reload
    lab.wait_rows(CITY_NAMES + COUNTRIES, timeout=90)
    browser.shot("redis-back")
    assert_ran_on_the_worker(stack, sql)
    print(f"first query after Redis returned: rows shown after {time.monotonic() - started:.1f}s")


def test_workers_stopped_sql_lab_shows_a_clear_error_within_the_pending_timeout(
    browser_fault_stack: FaultStack, open_browser: BrowserFactory
) -> None:
    stack = browser_fault_stack.stack
    sql = "SELECT population FROM demo.cities ORDER BY population"
    browser = logged_in(open_browser, stack)
    lab = sql_lab_tab(browser, stack, sql)

    browser_fault_stack.stop_role("worker")
    started = time.monotonic()
    lab.run()
    browser.wait(lambda d: lab.query_state() == "pending" or lab.results_text(), 30, "the query never showed up")
    assert lab.query_state() == "pending", lab.results_text()
    browser.shot("workers-stopped-pending")
    bound = PENDING_TIMEOUT + 15
    error = lab.wait_error(timeout=bound)
    seconds = time.monotonic() - started
    browser.shot("workers-stopped-error")
    assert "No Celery worker picked up this query" in error, error
    assert last_query(stack, sql)["status"] == "failed"
    print(f"workers stopped: SQL Lab showed the error after {seconds:.1f}s (bound {bound}s)")
