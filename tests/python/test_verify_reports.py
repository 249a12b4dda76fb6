"""verify's Alerts & Reports check: the verdict from hand-written facts (table, milliseconds), and the gather
layer against real things on this host (Debian's Chromium, a loopback SMTP sink, a metadata database).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fixtures.smtp_sink import SmtpSink
from superset_async_glue.loading import parse_settings
from superset_async_glue.verify import diagnosis as dx
from superset_async_glue.verify.facts import PlatformView
from superset_async_glue.verify.model import REPORTS, Status
from superset_async_glue.verify.reports_check import (
    BrowserStart,
    ReportsFacts,
    SmtpAnswer,
    judge_reports,
)
from superset_async_glue.verify.reports_io import executor_state, smtp_answer, start_browser
from superset_async_glue.verify.target import LoadedConfig, Target, VerifyOptions

PASS, WARN, FAIL, SKIP = Status.PASS, Status.WARN, Status.FAIL, Status.SKIPPED

HEALTHY = ReportsFacts(
    enabled=True,
    beat_here=True,
    beat_tasks={"reports.scheduler": "reports.scheduler", "reports.prune_log": "reports.prune_log"},
    executor="admin",
    executor_state="active",
    browser=BrowserStart(True, 2.1, "the worker's interpreter, environment and user"),
    smtp=SmtpAnswer("127.0.0.1:25", "plain", True, "250 mail.example.org"),
)

# (case, facts, status, failure modes, text the reason must contain)
CASES: list[tuple[str, ReportsFacts, Status, tuple[str, ...], str]] = [
    ("healthy", HEALTHY, PASS, (), "answered EHLO (plain, no mail sent)"),
    ("off", replace(HEALTHY, enabled=False), SKIP, (), "reports.enabled is false"),
    ("no-scheduler-entry", replace(HEALTHY, beat_tasks={}), FAIL, (dx.BEAT_MISSING,), "no reports.scheduler"),
    ("config-not-imported", replace(HEALTHY, beat_tasks=None), PASS, (), "executor 'admin'"),
    ("beat-elsewhere", replace(HEALTHY, beat_here=False), PASS, (), "beat on another host"),
    ("executor-missing", replace(HEALTHY, executor_state="missing"), FAIL, (dx.REPORTS_EXECUTOR,), "does not exist"),
    ("executor-inactive", replace(HEALTHY, executor_state="inactive"), FAIL, (dx.REPORTS_EXECUTOR,), "inactive"),
    (
        "executor-unknown",
        replace(HEALTHY, executor_state="unknown", executor_error="OperationalError: no such table"),
        WARN,
        (dx.REPORTS_EXECUTOR,),
        "not checked (OperationalError",
    ),
    (
        "browser-fails",
        replace(HEALTHY, browser=BrowserStart(False, 0.8, "verify's own", "Message: session not created")),
        FAIL,
        (dx.REPORTS_BROWSER,),
        "session not created",
    ),
    (
        "browser-slow",
        replace(HEALTHY, browser=BrowserStart(True, 41.0, "verify's own")),
        WARN,
        (dx.REPORTS_BROWSER,),
        "took 41s",
    ),
    (
        "smtp-refused",
        replace(HEALTHY, smtp=SmtpAnswer("mail:25", "plain", False, "ConnectionRefusedError: [Errno 111]")),
        FAIL,
        (dx.REPORTS_SMTP,),
        "mail:25 (plain) did not answer EHLO",
    ),
    ("slack-only", replace(HEALTHY, smtp=None, slack=True), PASS, (), "Slack token configured"),
    (
        "everything-broken",
        replace(
            HEALTHY,
            executor_state="missing",
            browser=BrowserStart(False, 1.0, "x", "boom"),
            smtp=SmtpAnswer("m:25", "ssl", False, "timeout"),
        ),
        FAIL,
        (dx.REPORTS_EXECUTOR, dx.REPORTS_BROWSER, dx.REPORTS_SMTP),
        "does not exist",
    ),
]


@pytest.mark.parametrize(("facts", "status", "modes", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_reports_verdict(facts: ReportsFacts, status: Status, modes: tuple[str, ...], text: str) -> None:
    result = judge_reports(facts)
    assert result.spec == REPORTS
    assert (result.status, result.modes) == (status, modes), result
    assert text in result.reason, result.reason


def test_every_reports_mode_has_a_fix() -> None:
    for mode in (dx.REPORTS_BROWSER, dx.REPORTS_SMTP, dx.REPORTS_EXECUTOR):
        assert dx.MODES[mode].fix and dx.remedy((mode,)) == dx.MODES[mode].fix


# -- the gather layer, against real components (no stack) ----------------------------------------------------


def _target(tmp_path: Path, reports: dict[str, Any], uri: str | None = None) -> Target:
    settings = parse_settings(
        json.dumps(
            {
                "state_dir": str(tmp_path),
                "secret_key_file": "/run/keys/sk",
                "global_async_queries": {"enabled": False},
                "reports": {"enabled": True, **reports},
            }
        )
    )
    module = type("Config", (), {"SQLALCHEMY_DATABASE_URI": uri})
    options = VerifyOptions(settings_path=tmp_path / "settings.json", config_path=tmp_path / "superset_config.py")
    return Target(options=options, settings=settings, config=LoadedConfig(None, module), secrets=())  # type: ignore[arg-type]


NO_WORKER = PlatformView("none", "test", {})


def test_smtp_answer_says_ehlo_and_sends_nothing(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    answer = smtp_answer(_target(tmp_path, {"smtp": {"host": "127.0.0.1", "port": smtp_sink.port}}))
    assert answer.ok and answer.reply.startswith("250"), answer
    assert smtp_sink.messages() == []
    closed = smtp_answer(_target(tmp_path, {"smtp": {"host": "127.0.0.1", "port": 9}}))  # discard: nothing listens
    assert not closed.ok and "Refused" in closed.reply, closed


def test_executor_state_reads_the_user_table(tmp_path: Path) -> None:
    db = tmp_path / "superset.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE ab_user (username TEXT, active BOOLEAN)")
        c.executemany("INSERT INTO ab_user VALUES (?, ?)", [("admin", 1), ("gone", 0)])
    target = _target(tmp_path, {"smtp": {"host": "m"}}, f"sqlite:///{db}")
    assert executor_state(target, "admin", NO_WORKER) == ("active", "")
    assert executor_state(target, "gone", NO_WORKER) == ("inactive", "")
    assert executor_state(target, "nobody", NO_WORKER) == ("missing", "")
    state, why = executor_state(
        _target(tmp_path, {"smtp": {"host": "m"}}, f"sqlite:///{tmp_path}/none.db"), "a", NO_WORKER
    )
    assert state == "unknown" and "OperationalError" in why


def test_browser_starts_headless_with_the_rendered_arguments(tmp_path: Path) -> None:
    started = start_browser(_target(tmp_path, {"smtp": {"host": "m"}}), NO_WORKER)
    assert started.ok, started
    broken = start_browser(
        _target(tmp_path, {"smtp": {"host": "m"}, "webdriver": {"chromedriver_path": "/nonexistent/chromedriver"}}),
        NO_WORKER,
    )
    assert not broken.ok and broken.message, broken
