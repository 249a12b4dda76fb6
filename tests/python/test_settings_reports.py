"""The `reports` settings: refused with the field and the fix; secrets only as files; through `check` as users run it.

Validation runs in-process (milliseconds per case); one case goes through the real CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fixtures.common import SettingsFactory, deep_merge, run_cli
from superset_async_glue.errors import SettingsError
from superset_async_glue.loading import parse_settings
from superset_async_glue.render import render_config
from superset_async_glue.settings import Settings, secret_files

BASE: dict[str, Any] = {
    "state_dir": "/var/lib/superset-async",
    "secret_key_file": "/run/keys/superset-secret",
    "global_async_queries": {"jwt_secret_file": "/run/keys/gaq"},
}
ON = {"enabled": True, "smtp": {"host": "mail.example.org"}}

# (case id, overrides of BASE, location that must be named, text the message must contain)
INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    ("on-without-delivery", {"reports": {"enabled": True}}, "reports.smtp.host", "reports.slack.token_file"),
    (
        "inline-smtp-password",
        {"reports": {**ON, "smtp": {"host": "m", "user": "u", "password": "hunter2"}}},
        "reports.smtp.password",
        "password_file",
    ),
    (
        "relative-password-file",
        {"reports": {**ON, "smtp": {"host": "m", "user": "u", "password_file": "smtp"}}},
        "reports.smtp.password_file",
        "absolute path",
    ),
    (
        "password-without-user",
        {"reports": {**ON, "smtp": {"host": "m", "password_file": "/run/keys/smtp"}}},
        "reports.smtp.user",
        "logs in only with both",
    ),
    (
        "starttls-and-ssl",
        {"reports": {**ON, "smtp": {"host": "m", "starttls": True, "ssl": True}}},
        "reports.smtp.ssl",
        "465",
    ),
    ("smtp-host-url", {"reports": {**ON, "smtp": {"host": "smtp://mail:25"}}}, "reports.smtp.host", "bare host"),
    ("smtp-port-range", {"reports": {**ON, "smtp": {"host": "m", "port": 0}}}, "reports.smtp.port", "greater than"),
    (
        "mail-from",
        {"reports": {**ON, "smtp": {"host": "m", "mail_from": "superset"}}},
        "reports.smtp.mail_from",
        "pattern",
    ),
    (
        "inline-slack-token",
        {"reports": {"enabled": True, "slack": {"token": "xoxb-1"}}},
        "reports.slack.token",
        "token_file",
    ),
    (
        "browser-name",
        {"reports": {**ON, "webdriver": {"chromium_path": "/opt/chrome/chrome-wrapper"}}},
        "reports.webdriver.chromium_path",
        "finds the browser by its file name",
    ),
    (
        "relative-driver",
        {"reports": {**ON, "webdriver": {"chromedriver_path": "chromedriver"}}},
        "reports.webdriver.chromedriver_path",
        "absolute path",
    ),
    (
        "base-url-credentials",
        {"reports": {**ON, "webdriver": {"base_url": "http://admin:pw@web:8088/"}}},
        "reports.webdriver.base_url",
        "without credentials",
    ),
    (
        "load-seconds-zero",
        {"reports": {**ON, "webdriver": {"load_seconds": 0}}},
        "reports.webdriver.load_seconds",
        "greater than or equal to 1",
    ),
    # Two beats send every report twice: a beat embedded in the worker is one the settings can see.
    ("worker-embedded-beat", {"reports": ON, "worker": {"extra_args": ["-B"]}}, "worker.extra_args", "two beats"),
    (
        "worker-embedded-beat-no-beat-role",
        {"reports": ON, "worker": {"extra_args": ["--beat"]}, "beat": {"enabled": False}},
        "worker.extra_args",
        "every worker host would run one",
    ),
    # The flag without the section would run reports with no browser or mail settings.
    ("flag-set-directly", {"feature_flags": {"ALERT_REPORTS": True}}, "feature_flags.ALERT_REPORTS", "reports.enabled"),
    (
        "no-scheduler-entry",
        {"reports": ON, "celery": {"beat_schedule": {}}},
        "celery.beat_schedule",
        "reports.scheduler",
    ),
]


def _parse(overrides: dict[str, Any]) -> Settings:
    return parse_settings(json.dumps(deep_merge(BASE, overrides)))


@pytest.mark.parametrize(("overrides", "location", "text"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_reports_settings_name_field_and_fix(overrides: dict[str, Any], location: str, text: str) -> None:
    with pytest.raises(SettingsError) as caught:
        _parse(overrides)
    problems = {p.location: p.message for p in caught.value.problems}
    assert location in problems, problems
    assert text in problems[location]
    assert "hunter2" not in str(caught.value) and "xoxb-1" not in str(caught.value)


VALID: list[tuple[str, dict[str, Any]]] = [
    ("off-by-default", {}),
    ("off-needs-nothing", {"reports": {"enabled": False}}),
    ("smtp-only", {"reports": ON}),
    ("slack-only", {"reports": {"enabled": True, "slack": {"token_file": "/run/keys/slack"}}}),
    (
        "smtp-login-starttls",
        {
            "reports": {
                **ON,
                "smtp": {"host": "m", "port": 587, "user": "u", "password_file": "/run/keys/smtp", "starttls": True},
            }
        },
    ),
    # Scale-out: beat on another host, this host's worker runs the reports.
    ("beat-elsewhere", {"reports": ON, "beat": {"enabled": False}, "celery": {"beat_schedule": {}}}),
    ("nixpkgs-paths", {"reports": {**ON, "webdriver": {"chromium_path": "/nix/store/x-chromium/bin/chromium"}}}),
    ("embedded-beat-reports-off", {"worker": {"extra_args": ["-B"]}}),
]


@pytest.mark.parametrize("overrides", [c[1] for c in VALID], ids=[c[0] for c in VALID])
def test_valid_reports_settings(overrides: dict[str, Any]) -> None:
    _parse(overrides)


def test_defaults_are_off_with_debian_browser() -> None:
    reports = _parse({}).reports
    assert not reports.enabled
    assert (reports.webdriver.chromium_path, reports.webdriver.chromedriver_path) == (
        "/usr/bin/chromium",
        "/usr/bin/chromedriver",
    )
    assert reports.webdriver.jitless
    assert reports.executor is None  # the admin, resolved by the renderer


def test_secrets_are_credentials() -> None:
    smtp = {"host": "m", "user": "u", "password_file": "/run/keys/smtp"}
    found = secret_files(
        _parse({"reports": {"enabled": True, "smtp": smtp, "slack": {"token_file": "/run/keys/slack"}}})
    )
    assert found["smtp_password"] == ("reports.smtp.password_file", "/run/keys/smtp")
    assert found["slack_token"] == ("reports.slack.token_file", "/run/keys/slack")


def test_schema_marks_reports_secret_files() -> None:
    schema = json.dumps(Settings.model_json_schema())
    defs = Settings.model_json_schema()["$defs"]
    assert defs["SMTP"]["properties"]["password_file"]["anyOf"][0].get("secret_file") is True, schema[:200]
    assert defs["Slack"]["properties"]["token_file"]["anyOf"][0].get("secret_file") is True


def test_check_names_the_missing_delivery(make_settings: SettingsFactory, tmp_path: Path) -> None:
    path = make_settings({"reports": {"enabled": True}})
    result = run_cli("check", "--settings", str(path))
    assert result.code == 2, result
    assert "reports.smtp.host" in result.stderr + result.stdout


def test_rendered_reports_keys_read_secrets_late(tmp_path: Path) -> None:
    smtp_password, slack_token = "smtp-Pa55-value", "xoxb-token-value"
    (tmp_path / "smtp").write_text(smtp_password)
    (tmp_path / "slack").write_text(slack_token)
    reports = {
        "enabled": True,
        "smtp": {"host": "127.0.0.1", "port": 2525, "user": "u", "password_file": str(tmp_path / "smtp")},
        "slack": {"token_file": str(tmp_path / "slack")},
        "webdriver": {"chromium_path": "/opt/c/bin/chromium", "chromedriver_path": "/opt/c/bin/chromedriver"},
    }
    wildcard = "0.0.0.0"  # noqa: S104 - only rendered, never bound
    text = render_config(_parse({"reports": reports, "web": {"bind": wildcard, "port": 8099}}))
    compile(text, "superset_config.py", "exec")
    assert smtp_password not in text and slack_token not in text
    for line in (
        "FEATURE_FLAGS['ALERT_REPORTS'] = True",
        "ALERT_REPORTS_NOTIFICATION_DRY_RUN = False",
        "    ALERT_REPORTS_EXECUTORS = [FixedExecutor('admin')]",
        "WEBDRIVER_TYPE = 'chrome'",
        "SMTP_PASSWORD = _secret('reports.smtp.password_file', ",
        "SLACK_API_TOKEN = lambda: _secret('reports.slack.token_file', ",
        "        'executable_path': '/opt/c/bin/chromedriver',",
        "    'PATH': '/opt/c/bin:' + os.environ.get('PATH', '/usr/bin:/bin'),",
        "WEBDRIVER_BASEURL = 'http://127.0.0.1:8099/'",
        "SMTP_SSL_SERVER_AUTH = True",
        # reports.scheduler derives "now" from its expiry minus this: the beat entry's expires_seconds
        "CELERY_BEAT_SCHEDULER_EXPIRES = timedelta(seconds=3600)",
        "task_prerun.connect(_reports_eta_as_datetime, weak=False)",
        "def IS_FEATURE_ENABLED_FUNC(feature, default):",
    ):
        assert any(row.startswith(line) for row in text.splitlines()), line
    for arg in ("--disable-dev-shm-usage", "--js-flags=--jitless", "--no-sandbox", "--no-zygote"):
        assert f"'{arg}'" in text, arg
    off = render_config(_parse({}))
    assert "# Alerts & Reports are off (reports.enabled)." in off
    assert "ALERT_REPORTS" not in off and "WEBDRIVER_TYPE" not in off and "SMTP_" not in off
