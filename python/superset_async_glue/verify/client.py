"""Superset's REST API as the UI uses it: log in, CSRF, async SQL Lab, results, async chart data;
and the login form as a browser submits it (`form_login`).

The sequence is the one in the field notes (superset-6.1-field-notes.md, "REST sequence"). Used by
check 9 and by the tests (tests/python/fixtures/superset_api.py re-exports it).
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
import secrets
import string
import time
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from ..errors import GlueError

TERMINAL = ("success", "failed", "stopped", "timed_out")
# SQL Lab's "Failed to start remote query on a worker." (SupersetErrorType.ASYNC_WORKERS_ERROR).
ASYNC_WORKERS_ISSUE = 1035


class SupersetApiError(GlueError):
    """Superset answered something other than what the step expects; carries status and Superset's message."""

    def __init__(
        self, step: str, status: int, message: str, issue_codes: tuple[int, ...] = (), error_type: str | None = None
    ) -> None:
        self.step = step
        self.status = status
        self.message = message
        self.issue_codes = issue_codes
        self.error_type = error_type
        codes = f", issue code {', '.join(map(str, issue_codes))}" if issue_codes else ""
        super().__init__(f"{step}: HTTP {status}: {message}{codes}")


def _error_of(step: str, response: requests.Response) -> SupersetApiError:
    try:
        body = response.json()
    except ValueError:
        return SupersetApiError(step, response.status_code, response.text.strip()[:300] or response.reason)
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        first = errors[0]
        codes = tuple(int(c["code"]) for c in (first.get("extra") or {}).get("issue_codes", []) if "code" in c)
        return SupersetApiError(step, response.status_code, str(first.get("message")), codes, first.get("error_type"))
    message = body.get("message") if isinstance(body, dict) else None
    return SupersetApiError(step, response.status_code, str(message or body)[:300])


@dataclass(frozen=True)
class Submitted:
    """An async SQL Lab query Superset accepted (202)."""

    query_id: int
    client_id: str
    started: float  # time.monotonic() before the submit


@dataclass(frozen=True)
class QueryOutcome:
    """An async query's end: state, rows as lists, column names, and seconds from submit to results."""

    query_id: int
    state: str
    rows: list[list[Any]]
    columns: list[str]
    seconds: float
    error: str | None = None


@dataclass(frozen=True)
class FormLogin:
    """What `POST /login/` (username, password and the page's CSRF token, form-encoded) answered."""

    status: int
    location: str | None  # where a redirect points
    logged_in: bool  # the session cookie it set makes /api/v1/me/ answer as the user
    messages: tuple[str, ...]  # what Superset flashed (a refused password: "Invalid login. Please try again.")
    seconds: float

    @property
    def back_to_login(self) -> bool:
        """Sent back to the login page: how Flask-AppBuilder refuses a login."""
        return self.location is not None and urlsplit(self.location).path.rstrip("/").endswith("/login")


_CSRF_INPUT = re.compile(r'<input\b[^>]*\bname="csrf_token"[^>]*>', re.IGNORECASE)
_VALUE = re.compile(r'\bvalue="([^"]*)"')


def form_login(base_url: str, username: str, password: str, timeout: float = 30) -> FormLogin:
    """Log in through the login form as a browser does: GET /login/, take the hidden csrf_token
    input, POST the form. Raises SupersetApiError when the login page itself is not served."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    started = time.monotonic()
    with requests.Session() as http:
        page = http.get(base + "login/", timeout=timeout)
        if page.status_code != 200:
            raise _error_of("GET /login/", page)
        field = _CSRF_INPUT.search(page.text)
        value = _VALUE.search(field.group(0)) if field else None
        if value is None:
            raise SupersetApiError("GET /login/", page.status_code, "the login page has no csrf_token input")
        answer = http.post(
            base + "login/",
            data={"username": username, "password": password, "csrf_token": html.unescape(value.group(1))},
            headers={"Referer": base + "login/"},
            allow_redirects=False,
            timeout=timeout,
        )
        logged_in = False
        if answer.is_redirect:
            me = http.get(base + "api/v1/me/", timeout=timeout)
            logged_in = me.status_code == 200 and me.json().get("result", {}).get("username") == username
        return FormLogin(
            answer.status_code,
            answer.headers.get("Location"),
            logged_in,
            _flashed(answer.cookies.get("session")),
            time.monotonic() - started,
        )


def _flashed(cookie: str | None) -> tuple[str, ...]:
    """The messages Flask keeps in its session cookie for the next page (Superset 6.1's React login page
    does not render them into the HTML). The cookie is signed, not encrypted: its payload is readable."""
    if not cookie:
        return ()
    compressed = cookie.startswith(".")
    payload = cookie.lstrip(".").split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        session = json.loads(zlib.decompress(raw) if compressed else raw)
    except (binascii.Error, zlib.error, ValueError):
        return ()
    flashes = session.get("_flashes", []) if isinstance(session, dict) else []
    # Flask's tagged JSON stores each (category, message) tuple as {" t": [category, message]}.
    pairs = [f.get(" t", f) if isinstance(f, dict) else f for f in flashes]
    return tuple(str(p[-1]) for p in pairs if isinstance(p, list) and p)


def new_client_id() -> str:
    """SQL Lab's client_id: 11 characters."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(11))


class SupersetClient:
    """A logged-in session (bearer token, CSRF token and cookies, including GAQ's async-token)."""

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30) -> None:
        self.base = base_url if base_url.endswith("/") else base_url + "/"
        self.timeout = timeout
        self.http = requests.Session()
        login = self.http.post(
            self.base + "api/v1/security/login",
            json={"username": username, "password": password, "provider": "db", "refresh": True},
            timeout=timeout,
        )
        if login.status_code != 200:
            raise _error_of(f"log in as {username!r}", login)
        self.http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        csrf = self.http.get(self.base + "api/v1/security/csrf_token/", timeout=timeout)
        if csrf.status_code != 200:
            raise _error_of("CSRF token", csrf)
        self.http.headers["X-CSRFToken"] = csrf.json()["result"]
        self.http.headers["Referer"] = self.base

    def session_copy(self, timeout: float | None = None) -> SupersetClient:
        """Another HTTP session with this one's login (bearer token, CSRF token, cookies), without logging
        in again: requests.Session is not thread-safe, so each thread takes its own copy."""
        other = object.__new__(SupersetClient)
        other.base, other.timeout = self.base, self.timeout if timeout is None else timeout
        other.http = requests.Session()
        other.http.headers.update(self.http.headers)
        other.http.cookies.update(self.http.cookies)
        return other

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(self.base + path.lstrip("/"), params=params or None, timeout=self.timeout)
        if response.status_code != 200:
            raise _error_of(f"GET /{path.lstrip('/').split('?')[0]}", response)
        return response.json()

    def post(self, path: str, body: dict[str, Any], expect: tuple[int, ...] = (200,)) -> Any:
        response = self.http.post(self.base + path.lstrip("/"), json=body, timeout=self.timeout)
        if response.status_code not in expect:
            raise _error_of(f"POST /{path.lstrip('/')}", response)
        return response.json()

    def database_id(self, name: str) -> int:
        found = self.get("api/v1/database/", q=f"(filters:!((col:database_name,opr:eq,value:'{name}')))")
        ids = [row["id"] for row in found["result"] if row["database_name"] == name]
        if not ids:
            raise SupersetApiError(f"database {name!r}", 404, "not registered in Superset (run bootstrap)")
        return int(ids[0])

    # -- SQL Lab -------------------------------------------------------------------------------
    def submit_async(
        self, database_id: int, sql: str, schema: str | None = None, tab: str = "superset-async verify"
    ) -> Submitted:
        """POST /api/v1/sqllab/execute/ with runAsync; Superset must answer 202 (queued for a worker)."""
        client_id = new_client_id()
        started = time.monotonic()
        body = {
            "database_id": database_id,
            "sql": sql,
            "runAsync": True,
            "client_id": client_id,
            "schema": schema,
            "tab": tab,
            "sql_editor_id": "1",
            "queryLimit": 1000,
            "expand_data": True,
            "select_as_cta": False,
            "ctas_method": "TABLE",
            "templateParams": "{}",
        }
        response = self.http.post(self.base + "api/v1/sqllab/execute/", json=body, timeout=self.timeout)
        if response.status_code != 202:
            raise _error_of("POST /api/v1/sqllab/execute/ (runAsync)", response)
        return Submitted(int(response.json()["query"]["queryId"]), client_id, started)

    def query(self, query_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"api/v1/query/{query_id}")["result"]
        return result

    def results(self, results_key: str) -> tuple[list[str], list[list[Any]]]:
        data = self.get("api/v1/sqllab/results/", q=f"(key:'{results_key}')")
        columns = [c["column_name"] for c in data["columns"]]
        return columns, [[row[c] for c in columns] for row in data["data"]]

    def stop(self, client_id: str) -> None:
        """Stop a query (best effort: used to clean up a query verify gave up on)."""
        self.http.post(self.base + "api/v1/query/stop", json={"client_id": client_id}, timeout=self.timeout)

    def run_async(self, database_id: int, sql: str, schema: str | None = None, timeout: float = 120) -> QueryOutcome:
        """Submit with runAsync true, poll /api/v1/query/<id>, fetch the results by their key."""
        submitted = self.submit_async(database_id, sql, schema)
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(submitted.query_id)
            if result["status"] in TERMINAL:
                break
            if time.monotonic() > deadline:
                still = f"still {result['status']!r} after {timeout}s"
                raise SupersetApiError(f"query {submitted.query_id}", 202, still)
            time.sleep(0.1)
        if result["status"] != "success":
            return QueryOutcome(
                submitted.query_id,
                result["status"],
                [],
                [],
                time.monotonic() - submitted.started,
                result.get("error_message"),
            )
        columns, rows = self.results(result["results_key"])
        return QueryOutcome(submitted.query_id, "success", rows, columns, time.monotonic() - submitted.started)

    # -- GLOBAL_ASYNC_QUERIES --------------------------------------------------------------------
    def chart_data_async(self, query_id: int) -> dict[str, Any]:
        """POST /api/v1/chart/data on an SQL Lab query as datasource, forced past the cache: 202 with job_id."""
        body = {
            "datasource": {"id": query_id, "type": "query"},
            "force": True,
            "queries": [
                {
                    "columns": [],
                    "orderby": [],
                    "row_limit": 10,
                    "metrics": [
                        {"expressionType": "SQL", "sqlExpression": "COUNT(*)", "label": "superset_async_verify_rows"}
                    ],
                }
            ],
            "result_format": "json",
            "result_type": "full",
        }
        job: dict[str, Any] = self.post("api/v1/chart/data", body, expect=(202,))
        return job

    def async_events(self, last_id: str | None) -> list[dict[str, Any]]:
        params = {"last_id": last_id} if last_id else {}
        events: list[dict[str, Any]] = self.get("api/v1/async_event/", **params)["result"]
        return events

    def fetch(self, url: str) -> Any:
        return self.get(url.lstrip("/"))
