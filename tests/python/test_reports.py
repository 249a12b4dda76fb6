"""Alerts & Reports delivered by a real stack: beat's reports.scheduler tick, the worker's headless Chromium,
a loopback SMTP sink (aiosmtpd). Everything is created at once through Superset's REST API, then the
tests wait for the same scheduler tick (about a minute), so the file takes about 2.5 minutes with the
stack's start.

- a PNG report on a bar chart of the ClickHouse demo dataset, every minute: an e-mail with a PNG that
  shows the chart (its size, several distinct colours);
- SQL alerts on ClickHouse: one whose condition holds fires (an e-mail), one whose condition does not
  stays quiet (its log says "Not triggered", no e-mail);
- a report whose screenshot cannot finish within its working timeout ends in the error state with a
  log entry, and its next run is not blocked (it runs and logs again);
- reports.prune_log removes log rows older than the report's retention and keeps the others.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from fixtures.browser import docs_dir
from fixtures.smtp_sink import Received, SmtpSink
from fixtures.stack import Stack, start_stack
from fixtures.verify_faults import run_verify
from PIL import Image
from superset_async_glue.loading import parse_settings
from superset_async_glue.render_reports import browser_args, browser_environment
from superset_async_glue.verify.client import SupersetClient

TICK_WAIT = 150.0  # seconds: the next minute's tick, the execute task's eta, the screenshot on 2 cores
RECIPIENT = "reports-test@example.org"
CITIES_SQL = "SELECT name, country, population FROM demo.cities"


@pytest.fixture(scope="module")
def reports_stack(smtp_sink: SmtpSink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides = {
        "reports": {
            "enabled": True,
            "smtp": {"host": "127.0.0.1", "port": smtp_sink.port, "mail_from": "superset@example.org"},
            "webdriver": {"animation_seconds": 1},
        }
    }
    with start_stack(tmp_path_factory.mktemp("reports"), overrides) as stack:
        yield stack


@dataclass(frozen=True)
class Scenario:
    """What was created, all at once, before the scheduler's next tick."""

    client: SupersetClient
    created_at: float
    report: int
    timeout_report: int
    alert_fires: int
    alert_quiet: int
    names: dict[int, str]


def _chart(client: SupersetClient, database_id: int) -> int:
    # A virtual dataset: physical ones fail with ClickHouse 18.16 through clickhousedb (field notes).
    dataset = client.post(
        "api/v1/dataset/",
        {"database": database_id, "schema": "demo", "table_name": f"cities_{uuid.uuid4().hex[:8]}", "sql": CITIES_SQL},
        expect=(201,),
    )
    population = {"expressionType": "SIMPLE", "column": {"column_name": "population"}, "aggregate": "SUM"}
    params = {
        "viz_type": "echarts_timeseries_bar",
        "datasource": f"{dataset['id']}__table",
        "x_axis": "name",
        "metrics": [{**population, "label": "population"}],
        "groupby": ["country"],
        "stack": "Stack",  # one bar per city, coloured by country
        "adhoc_filters": [],
        "row_limit": 10,
    }
    chart = client.post(
        "api/v1/chart/",
        {
            "slice_name": "Population by city",
            "viz_type": params["viz_type"],
            "datasource_id": dataset["id"],
            "datasource_type": "table",
            "params": json.dumps(params),
            # Saved by the UI with the chart; an alert's CSV is fetched with it (without one, Superset
            # first takes a screenshot to generate it).
            "query_context": json.dumps(
                {
                    "datasource": {"id": dataset["id"], "type": "table"},
                    "force": False,
                    "queries": [{"columns": ["name", "country"], "metrics": params["metrics"], "row_limit": 10}],
                    "form_data": params,
                    "result_format": "json",
                    "result_type": "full",
                }
            ),
        },
        expect=(201,),
    )
    return int(chart["id"])


def _schedule(client: SupersetClient, body: dict[str, Any]) -> int:
    common = {
        "crontab": "* * * * *",
        "timezone": "UTC",
        "active": True,
        "log_retention": 1,
        "grace_period": 1,
        "recipients": [{"type": "Email", "recipient_config_json": {"target": RECIPIENT}}],
        # As the Alerts & Reports list creates them: several may share one chart.
        "creation_method": "alerts_reports",
    }
    return int(client.post("api/v1/report/", {**common, **body}, expect=(201,))["id"])


@pytest.fixture(scope="module")
def scenario(reports_stack: Stack) -> Scenario:
    client = SupersetClient(reports_stack.web_url, reports_stack.admin_username, reports_stack.admin_password())
    database_id = client.database_id(reports_stack.clickhouse_database_name)
    chart = _chart(client, database_id)
    tag = uuid.uuid4().hex[:6]
    names = {
        "report": f"Cities report {tag}",
        "timeout": f"Cities report that times out {tag}",
        "fires": f"Cities alert that fires {tag}",
        "quiet": f"Cities alert that stays quiet {tag}",
    }
    png = {"chart": chart, "report_format": "PNG"}
    report = _schedule(client, {"type": "Report", "name": names["report"], "working_timeout": 600, **png})
    # Celery's soft limit of the run is working_timeout + 1 s: it lands while the browser still opens
    # the chart (SCREENSHOT_SELENIUM_HEADSTART alone is 3 s).
    timeout = _schedule(client, {"type": "Report", "name": names["timeout"], "working_timeout": 1, **png})
    alert: dict[str, Any] = {
        "type": "Alert",
        "database": database_id,
        "sql": "SELECT count(*) FROM demo.cities",
        "validator_type": "operator",
        "chart": chart,
        "report_format": "CSV",  # the alert's e-mail without a browser: the chart's data as CSV
        "working_timeout": 600,
    }
    fires = _schedule(client, {**alert, "name": names["fires"], "validator_config_json": {"op": ">", "threshold": 0}})
    quiet = _schedule(
        client, {**alert, "name": names["quiet"], "validator_config_json": {"op": ">", "threshold": 1000000}}
    )
    ids = {"report": report, "timeout": timeout, "fires": fires, "quiet": quiet}
    return Scenario(client, time.monotonic(), report, timeout, fires, quiet, {ids[k]: v for k, v in names.items()})


def _logs(scenario: Scenario, report_id: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = scenario.client.get(f"api/v1/report/{report_id}/log/")["result"]
    return found


def _wait_logs(
    scenario: Scenario, report_id: int, count: int = 1, deadline: float | None = None
) -> list[dict[str, Any]]:
    """The report's log rows once `count` runs have ended (a run in progress logs 'Working' first)."""
    deadline = deadline or scenario.created_at + TICK_WAIT
    while True:
        ended = [row for row in _logs(scenario, report_id) if row["state"] != "Working"]
        if len(ended) >= count or time.monotonic() > deadline:
            return ended
        time.sleep(2)


def _mail(sink: SmtpSink, scenario: Scenario, report_id: int) -> Received | None:
    name = scenario.names[report_id]
    left = max(1.0, scenario.created_at + TICK_WAIT - time.monotonic())
    return sink.wait_for(lambda m: name in m.subject and RECIPIENT in m.rcpt_tos, left)


def test_png_report_arrives_by_mail_with_the_chart(scenario: Scenario, smtp_sink: SmtpSink) -> None:
    mail = _mail(smtp_sink, scenario, scenario.report)
    assert mail is not None, (
        f"no report e-mail within {TICK_WAIT} s; logs: {_logs(scenario, scenario.report)}; "
        f"received: {[m.subject for m in smtp_sink.messages()]}"
    )
    assert mail.mail_from == "superset@example.org"
    pngs = [data for _, kind, data in mail.attachments() if kind == "image/png"]
    assert len(pngs) == 1, mail.message
    image = Image.open(io.BytesIO(pngs[0])).convert("RGB")
    # A chart, not a blank or an error page: a real size and the bars' and labels' colours.
    assert image.width >= 600 and image.height >= 300, image.size
    colours = image.getcolors(maxcolors=1 << 20) or []
    distinct = sorted(colours, reverse=True)
    assert len(distinct) >= 20, f"{len(distinct)} colours: the screenshot looks blank"
    assert distinct[0][0] < 0.97 * image.width * image.height, "one colour fills the screenshot"
    if (docs := docs_dir()) is not None:
        docs.mkdir(parents=True, exist_ok=True)
        (docs / "report-email.png").write_bytes(pngs[0])
    states = {row["state"] for row in _wait_logs(scenario, scenario.report)}
    assert "Success" in states, states


def test_sql_alert_fires_when_its_condition_holds(scenario: Scenario, smtp_sink: SmtpSink) -> None:
    mail = _mail(smtp_sink, scenario, scenario.alert_fires)
    assert mail is not None, f"the alert did not fire; logs: {_logs(scenario, scenario.alert_fires)}"
    csv = [data for name, _, data in mail.attachments() if name.endswith(".csv")]
    assert csv and b"population" in csv[0], [(name, kind) for name, kind, _ in mail.attachments()]
    assert "Success" in {row["state"] for row in _wait_logs(scenario, scenario.alert_fires)}


def test_sql_alert_stays_quiet_when_it_does_not(scenario: Scenario, smtp_sink: SmtpSink) -> None:
    logs = _wait_logs(scenario, scenario.alert_quiet)
    assert [row["state"] for row in logs] and {row["state"] for row in logs} == {"Not triggered"}, logs
    name = scenario.names[scenario.alert_quiet]
    assert not [m.subject for m in smtp_sink.messages() if name in m.subject]


def _broker(stack: Stack) -> Celery:
    url = f"redis://:{stack.redis_password()}@{stack.redis_host}:{stack.redis_port}/{stack.broker_db}"
    return Celery(broker=url)


def test_report_whose_screenshot_times_out_ends_in_error_and_runs_again(
    scenario: Scenario, reports_stack: Stack
) -> None:
    first = _wait_logs(scenario, scenario.timeout_report)
    assert first, "the report never ran"
    assert first[0]["state"] == "Error", first
    assert "screenshot" in (first[0]["error_message"] or "").lower(), first[0]
    report = scenario.client.get(f"api/v1/report/{scenario.timeout_report}")["result"]
    assert report["last_state"] == "Error", report
    # The next run, sent as beat's scheduler sends it (same limits), is not refused as still working.
    with _broker(reports_stack) as app:
        app.send_task(
            "reports.execute",
            args=[scenario.timeout_report],
            eta=datetime.now(tz=UTC),
            soft_time_limit=2,
            time_limit=11,
        )
    again = _wait_logs(scenario, scenario.timeout_report, len(first) + 1, deadline=time.monotonic() + 60)
    assert len(again) > len(first), again
    newest = max(again, key=lambda row: row["start_dttm"] or "")
    assert newest["state"] == "Error" and "screenshot" in (newest["error_message"] or "").lower(), newest
    assert "still working" not in (newest["error_message"] or "").lower()


def test_prune_log_removes_rows_older_than_retention(scenario: Scenario, reports_stack: Stack) -> None:
    rows = _wait_logs(scenario, scenario.report)
    assert rows
    database = reports_stack.state_dir / "superset.db"
    old = (datetime.now(tz=UTC) - timedelta(days=10)).replace(tzinfo=None)
    with sqlite3.connect(database, timeout=30) as db:
        (template,) = db.execute(
            "SELECT id FROM report_execution_log WHERE report_schedule_id = ? LIMIT 1", (scenario.report,)
        ).fetchall()
        columns = [c[1] for c in db.execute("PRAGMA table_info(report_execution_log)") if c[1] not in ("id", "uuid")]
        db.execute(
            f"INSERT INTO report_execution_log ({', '.join(columns)}, uuid) "  # noqa: S608 - column names from the table itself
            f"SELECT {', '.join(columns)}, ? FROM report_execution_log WHERE id = ?",
            (uuid.uuid4().bytes, template[0]),
        )
        old_id = db.execute("SELECT max(id) FROM report_execution_log").fetchone()[0]
        db.execute(
            "UPDATE report_execution_log SET scheduled_dttm = ?, start_dttm = ?, end_dttm = ? WHERE id = ?",
            (old, old, old, old_id),
        )
    with _broker(reports_stack) as app:
        app.send_task("reports.prune_log")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with sqlite3.connect(database, timeout=30) as db:
            ids = {
                r[0]
                for r in db.execute(
                    "SELECT id FROM report_execution_log WHERE report_schedule_id = ?", (scenario.report,)
                )
            }
        if old_id not in ids:
            break
        time.sleep(1)
    assert old_id not in ids, "reports.prune_log left the 10-day-old row of a report kept 1 day"
    assert template[0] in ids, "reports.prune_log removed a row within the retention"


def test_verify_checks_reports_on_the_running_stack(
    scenario: Scenario, reports_stack: Stack, smtp_sink: SmtpSink
) -> None:
    """verify's check 10: beat entry, executor, a browser started as the worker (its interpreter, environment
    and user, read from /proc), EHLO to the sink; no mail of its own."""
    run = run_verify(reports_stack, "--no-query", human=True, timeout=180)
    line = next((row for row in run.stdout.splitlines() if " 11 (optional) Alerts & Reports" in row), "")
    assert line.startswith("[PASS]"), run.stdout + run.stderr
    assert "browser started" in line and "the worker's interpreter, environment and user" in line, line
    assert f"SMTP 127.0.0.1:{smtp_sink.port} answered EHLO" in line, line
    names = set(scenario.names.values())
    assert all(any(name in m.subject for name in names) for m in smtp_sink.messages()), "verify sent a mail"


# -- the browser under the worker unit's hardening (no stack) ---------------------------------------------

# Runs `argv` under what the NixOS worker unit applies: NoNewPrivileges, MemoryDenyWriteExecute (the
# kernel's PR_SET_MDWE, which systemd uses where the kernel has it) and SystemCallFilter =
# [ "@system-service" "~@privileged" ] (groups expanded by this host's systemd-analyze) with the errno
# given (systemd's SystemCallErrorNumber=; 0 means the default action, killing the process).
_UNIT_SANDBOX = r"""
import ctypes, os, subprocess, sys
errno, argv = int(sys.argv[1]), sys.argv[2:]
groups = {}
group = None
listing = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True, text=True, check=True)
for line in listing.stdout.splitlines():
    if line.startswith("@"):
        group = line.strip()
    elif line.strip() and not line.strip().startswith("#") and group:
        groups.setdefault(group, []).append(line.strip())
def expand(name, seen):
    if not name.startswith("@"):
        return {name}
    if name in seen:
        return set()
    seen.add(name)
    return set().union(*(expand(item, seen) for item in groups.get(name, [])))
allowed = expand("@system-service", set()) - expand("@privileged", set())
seccomp = ctypes.CDLL("libseccomp.so.2")
seccomp.seccomp_init.restype = ctypes.c_void_p
seccomp.seccomp_init.argtypes = [ctypes.c_uint32]
seccomp.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
seccomp.seccomp_load.argtypes = [ctypes.c_void_p]
ctx = seccomp.seccomp_init(0x00050000 | errno if errno else 0x80000000)
for name in allowed:
    number = seccomp.seccomp_syscall_resolve_name(name.encode())
    if number >= 0:
        seccomp.seccomp_rule_add(ctx, 0x7FFF0000, number, 0)
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    sys.exit("this kernel has no PR_SET_MDWE (Linux 6.3+): cannot emulate MemoryDenyWriteExecute")
if libc.prctl(38, 1, 0, 0, 0) != 0 or seccomp.seccomp_load(ctx) != 0:  # PR_SET_NO_NEW_PRIVS
    sys.exit("cannot load the seccomp filter")
os.execv(argv[0], argv)
"""

# The screenshot path of Superset 6.1 in small: chromedriver by path, the rendered arguments, a page.
_SESSION = r"""
import json, sys
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
config = json.loads(sys.argv[1])
options = webdriver.ChromeOptions()
for arg in config["args"]:
    options.add_argument(arg)
driver = webdriver.Chrome(options=options, service=Service(executable_path=config["driver"], env=config["env"]))
try:
    driver.get("data:text/html,<p id=x></p><script>document.getElementById('x').textContent = 6 * 7</script>")
    print(driver.find_element("id", "x").text)
finally:
    driver.quit()
"""


def _browser_under_unit(tmp_path: Path, errno: int, jitless: bool = True) -> subprocess.CompletedProcess[str]:
    settings = parse_settings(
        json.dumps(
            {
                "state_dir": str(tmp_path),
                "secret_key_file": "/run/keys/sk",
                "global_async_queries": {"enabled": False},
                "reports": {"enabled": True, "smtp": {"host": "127.0.0.1"}, "webdriver": {"jitless": jitless}},
            }
        )
    )
    config = {
        "args": browser_args(settings),
        "driver": settings.reports.webdriver.chromedriver_path,
        "env": browser_environment(settings, dict(os.environ)),
    }
    argv = [sys.executable, "-c", _UNIT_SANDBOX, str(errno), sys.executable, "-c", _SESSION, json.dumps(config)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)


def test_browser_runs_under_the_worker_units_hardening_with_eperm(tmp_path: Path) -> None:
    """Measured for the NixOS module: MemoryDenyWriteExecute and the syscall filter stay, given
    SystemCallErrorNumber=EPERM (Chromium calls fchown, pkey_alloc and landlock_create_ruleset, outside
    the filter, and copes with EPERM) and the rendered arguments (--no-zygote, --js-flags=--jitless)."""
    ok = _browser_under_unit(tmp_path, errno=1)
    assert ok.returncode == 0 and ok.stdout.strip() == "42", ok.stderr[-2000:]
    killed = _browser_under_unit(tmp_path, errno=0)  # the unit's default action: the process is killed
    assert killed.returncode != 0, "the browser ran although the filter kills on a refused syscall"
    jit = _browser_under_unit(tmp_path, errno=1, jitless=False)  # W^X refused: V8's JIT cannot start
    assert jit.returncode != 0, "the browser ran with V8's JIT although W^X memory is refused"
