"""Gather for check 9: what a user does. Log in as the admin through the login form (GET /login/, its CSRF token,
POST /login/, as a browser does) and through the REST API, run an async SQL Lab query (runAsync) on
every database the settings mark allow_run_async, fetch its results; with GAQ on, one async chart-data
round trip (POST /api/v1/chart/data -> 202, /api/v1/async_event/ until done, then the result_url).

The REST API login does not touch the WTForms login form, so the form is tried on its own: with
wtforms-json 0.3.4 under WTForms 3 it answers 500 while every API call works (field notes).

A query that stays 'pending' is explained rather than waited on: no worker answering means nobody
consumes it; a worker that ran its task while the web's row stayed pending means the two use
different metadata databases.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests

from ..secret_io import SecretFileError, read_secret
from ..settings import Database
from ..web_address import web_url
from . import diagnosis as dx
from . import judge
from .client import ASYNC_WORKERS_ISSUE, TERMINAL, SupersetApiError, SupersetClient, form_login
from .facts import EndToEndFacts, PlatformView, Step, WorkerSurvey
from .target import Target
from .workers import sqllab_tasks, task_outcome

PENDING_GRACE = 2.0  # seconds a query may stay pending before verify asks the workers about it
FINISHED_GRACE = 2.0  # seconds between the worker finishing the task and the web's row showing it


def end_to_end_facts(  # noqa: PLR0911 - one return per reason not to run
    target: Target, platform: PlatformView, survey: Callable[[], WorkerSurvey]
) -> EndToEndFacts:
    """Check 9's facts: log in both ways, then each async database's query and the GAQ round trip."""
    settings, options = target.settings, target.options
    web = platform.role("web")
    databases = [d for d in settings.databases if d.allow_run_async]
    if not options.run_query:
        return EndToEndFacts(skip="--no-query: the async SQL Lab query and the GAQ round trip were not run")
    if platform.kind == "systemd" and web is not None and not web.present:
        return EndToEndFacts(
            skip="no superset-async-web unit on this host: run verify on the web host for the end-to-end check"
        )
    if not databases:
        return EndToEndFacts(skip="no database in the settings has allow_run_async: no async query to run")
    if settings.admin.password_file is None:
        return EndToEndFacts(skip="admin.password_file is not set: verify cannot log in")
    username = settings.admin.username
    try:
        password = read_secret("admin.password_file", settings.admin.password_file)
    except SecretFileError as err:
        return EndToEndFacts(login_error=f"cannot log in as {username!r}: {err}")
    base = web_url(settings)
    # The form login (a password hash in the web, about a second) runs beside the API login and the queries.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-form-login") as pool:
        form = pool.submit(form_login_step, base, username, password)
        started = time.monotonic()
        try:
            client = SupersetClient(base, username, password, timeout=30)
        except (SupersetApiError, requests.RequestException) as err:
            status = err.status if isinstance(err, SupersetApiError) else None
            api = Step("REST API login", False, time.monotonic() - started, str(err), (judge.api_login_mode(status),))
            return EndToEndFacts(form=form.result(), api_login=api)
        api = Step("REST API login", True, time.monotonic() - started, "logged in")
        steps = run_queries(target, client, databases, survey)
        if settings.global_async_queries.enabled:
            first_ok = next((s for s in steps if s.ok and s.query_id is not None), None)
            if first_ok is not None and first_ok.query_id is not None:
                steps.append(gaq_round_trip(client, first_ok.query_id, options.query_timeout))
            else:
                steps.append(Step("GAQ chart data", False, 0.0, "not tried: no async query succeeded to chart from"))
        return EndToEndFacts(form=form.result(), api_login=api, steps=tuple(steps))


def form_login_step(base_url: str, username: str, password: str) -> Step:
    """The browser's login: the form with its CSRF token must log the admin in (a session cookie)."""
    name = "form login"
    started = time.monotonic()
    try:
        answer = form_login(base_url, username, password, timeout=30)
    except requests.RequestException as err:
        return Step(name, False, time.monotonic() - started, f"the login page cannot be reached: {err}", (dx.WEB_DOWN,))
    except SupersetApiError as err:
        return Step(name, False, time.monotonic() - started, str(err), (dx.UNKNOWN,))
    said = f' (Superset says "{"; ".join(answer.messages)}")' if answer.messages else ""
    if answer.logged_in:
        text = f"POST /login/ with its CSRF token -> {answer.status} to {answer.location}, logged in as {username!r}"
        return Step(name, True, answer.seconds, f"{text} in {answer.seconds:.2f}s")
    modes = judge.form_login_modes(answer.status, answer.back_to_login, answer.messages)
    if modes == (dx.FORM_LOGIN_BROKEN,):
        text = (
            f"POST /login/ (username, password, CSRF token) answered HTTP {answer.status}: the login form is "
            "broken, no browser can log in"
        )
    elif modes == (dx.ADMIN_LOGIN_REFUSED,):
        text = f"the login form refused the password in admin.password_file for {username!r}{said}"
    else:
        where = f" to {answer.location}" if answer.location else ""
        text = f"POST /login/ answered {answer.status}{where}{said}, and the session is not logged in"
    return Step(name, False, answer.seconds, text, modes)


def run_queries(
    target: Target, client: SupersetClient, databases: list[Database], survey: Callable[[], WorkerSurvey]
) -> list[Step]:
    """Each database's query in turn. Once the web could not publish one to the broker, the others are
    not submitted: each would fail the same way, after the web's own publish retries (about 10 s)."""
    steps: list[Step] = []
    for db in databases:
        if steps and dx.BROKER_UNREACHABLE in steps[-1].modes:
            text = "not tried: the web could not publish the previous query to the broker"
            steps.append(Step(f"{db.name!r}", False, 0.0, text, (dx.BROKER_UNREACHABLE,)))
            continue
        steps.append(run_query(target, client, db, survey))
    return steps


def run_query(target: Target, client: SupersetClient, db: Database, survey: Callable[[], WorkerSurvey]) -> Step:
    name = f"{db.name!r}"
    started = time.monotonic()
    try:
        database_id = client.database_id(db.name)
        submitted = client.submit_async(database_id, target.options.sql)
    except SupersetApiError as err:
        seconds = time.monotonic() - started
        mode = judge.submit_error_mode(err.message, err.issue_codes, ASYNC_WORKERS_ISSUE)
        if mode == dx.BROKER_UNREACHABLE:
            text = (
                f'SQL Lab answered {err.status} "{err.message}" (issue code {ASYNC_WORKERS_ISSUE}): the web could '
                "not publish to the broker"
            )
            return Step(name, False, seconds, text, (mode,))
        return Step(name, False, seconds, str(err), (mode,))
    outcome = wait_for(target, client, submitted.query_id, submitted.started, survey)
    if outcome is not None:
        client.stop(submitted.client_id)  # leave no pending query behind
        return outcome
    result = client.query(submitted.query_id)
    seconds = time.monotonic() - submitted.started
    if result["status"] != "success":
        error = str(result.get("error_message") or "")
        mode = judge.query_error_mode(error)
        return Step(
            name, False, seconds, f"query {submitted.query_id} {result['status']}: {error}", (mode,), submitted.query_id
        )
    try:
        _columns, rows = client.results(str(result["results_key"]))
    except SupersetApiError as err:
        return Step(
            name,
            False,
            time.monotonic() - submitted.started,
            f"query {submitted.query_id} succeeded but its results could not be fetched: {err}",
            (dx.RESULTS_BACKEND_MISSING,),
            submitted.query_id,
        )
    seconds = time.monotonic() - submitted.started
    return Step(
        name,
        True,
        seconds,
        f"async query {submitted.query_id} -> {len(rows)} row(s) in {seconds:.2f}s",
        (),
        submitted.query_id,
    )


def wait_for(
    target: Target, client: SupersetClient, query_id: int, started: float, survey: Callable[[], WorkerSurvey]
) -> Step | None:
    """Poll until the query ends (None), or explain why it will not (a failing Step)."""
    deadline = started + target.options.query_timeout
    tasks: dict[str, str] = {}
    finished_at: dict[str, float] = {}
    next_look = started + PENDING_GRACE
    name = f"query {query_id}"
    while True:
        status = client.query(query_id)["status"]
        if status in TERMINAL:
            return None
        now = time.monotonic()
        if now >= next_look and status == "pending":
            next_look = now + 1.0
            found = survey()
            if not found.workers:
                modes, why = judge.pending_modes(found)
                return Step(
                    f"{name}",
                    False,
                    now - started,
                    f"still pending after {now - started:.1f}s: {why}; it would stay pending forever",
                    modes,
                    query_id,
                )
            tasks |= sqllab_tasks(target, found.names, query_id)
            for task_id in tasks:
                if task_id in finished_at:
                    continue
                state, error = task_outcome(target, task_id)
                if state in ("SUCCESS", "FAILURE"):
                    finished_at[task_id] = time.monotonic()
                    tasks[task_id] = f"{state}{': ' + error if error else ''}"
            done = [t for t, at in finished_at.items() if time.monotonic() - at > FINISHED_GRACE]
            if done:
                return Step(
                    name,
                    False,
                    time.monotonic() - started,
                    f"a worker ran task {done[0]} for query {query_id} ({tasks[done[0]][:160]}), yet the "
                    "web's query row is still pending: web and worker use different metadata databases",
                    (dx.METADATA_MISMATCH,),
                    query_id,
                )
        if now > deadline:
            held = f"; workers hold its task ({', '.join(tasks.values())})" if tasks else "; no worker holds its task"
            return Step(
                name,
                False,
                now - started,
                f"still {status} after {target.options.query_timeout:.0f}s{held}",
                (dx.NO_WORKER,),
                query_id,
            )
        time.sleep(0.1 if now - started < 2 else 0.25)


def gaq_round_trip(client: SupersetClient, query_id: int, timeout: float) -> Step:
    name = "GAQ chart data"
    started = time.monotonic()
    try:
        job = client.chart_data_async(query_id)
        job_id = job["job_id"]
        last_id: str | None = None
        deadline = started + timeout
        while True:
            events = client.async_events(last_id)
            if events:
                last_id = str(events[-1]["id"])
            mine = [e for e in events if e.get("job_id") == job_id]
            if mine and mine[-1].get("status") in ("done", "error"):
                event = mine[-1]
                break
            if time.monotonic() > deadline:
                return Step(
                    name,
                    False,
                    time.monotonic() - started,
                    f"job {job_id} not done after {timeout:.0f}s (no worker, or the async events stream is "
                    "not where the web reads it)",
                    (dx.NO_WORKER,),
                )
            time.sleep(0.1)
        if event["status"] != "done":
            return Step(
                name, False, time.monotonic() - started, f"job {job_id} failed: {event.get('errors')}", (dx.UNKNOWN,)
            )
        data = client.fetch(str(event["result_url"]))
        rows = data["result"][0].get("rowcount", len(data["result"][0].get("data", [])))
    except SupersetApiError as err:
        mode = dx.GAQ_SECRET if err.status == 401 else dx.UNKNOWN
        return Step(name, False, time.monotonic() - started, str(err), (mode,))
    seconds = time.monotonic() - started
    return Step(name, True, seconds, f"202 job -> event done -> {rows} row(s) from the result_url in {seconds:.2f}s")
