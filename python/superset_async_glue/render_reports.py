"""The Alerts & Reports part of superset_config.py (settings' `reports` section), kept apart from render.py.

Superset 6.1 reads these keys in superset/config.py, superset/utils/webdriver.py (WebDriverSelenium)
and superset/commands/report/execute.py. The SMTP password and the Slack token are read from their
files when Superset imports the config (Slack's only when a message is sent): never written here.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from .settings import Settings, secret_files
from .web_address import web_url

# Why each browser argument (keep docs/reports.md in step):
# --headless=new: no display; Chromium's current headless mode renders like a desktop browser.
# --no-sandbox: Chromium's own sandbox needs unprivileged user namespaces or a setuid helper. The
#   worker unit forbids both (RestrictNamespaces=true, NoNewPrivileges=true) and Chromium refuses to
#   start as root with its sandbox on (the runner as root); the unit's own confinement applies instead.
# --no-zygote: without the sandbox Chromium's zygote still checks its credentials, which the unit's
#   syscall filter refuses (measured under an emulation of the worker unit's filter: the zygote aborts
#   in credentials.cc; renderers started directly work).
# --disable-dev-shm-usage: shared memory in /tmp instead of /dev/shm, which is small (64 MB in
#   containers) or private (PrivateDevices=true) and would make pages crash.
# --disable-gpu: no GPU process (no /dev/dri under PrivateDevices).
# --js-flags=--jitless (webdriver.jitless): V8 without its JIT needs no writable-and-executable memory,
#   so the worker keeps MemoryDenyWriteExecute=true (measured: with W^X enforced and the JIT on, the
#   renderer dies "Failed to reserve virtual memory for CodeRange").
# --user-agent: marks the report browser's requests, which get their chart data synchronously from the
#   web (_SYNC_CHARTS_FOR_REPORTS below).
REPORTS_USER_AGENT_MARKER = "superset-async-reports"
BROWSER_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--no-zygote",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--user-agent=Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome Safari/537.36 "
    + REPORTS_USER_AGENT_MARKER,
)
JITLESS_ARG = "--js-flags=--jitless"


def browser_args(settings: Settings) -> list[str]:
    """WEBDRIVER_OPTION_ARGS: what Chromium is started with (also by verify's start check)."""
    return [*BROWSER_ARGS, *([JITLESS_ARG] if settings.reports.webdriver.jitless else [])]


def browser_dir(settings: Settings) -> str:
    """The browser's own HOME under the state dir: its profile, cache and fontconfig cache."""
    return f"{settings.state_dir}/browser"


def _browser_overrides(settings: Settings) -> tuple[str, dict[str, str]]:
    # chromedriver finds the browser by name on its PATH (6.1 cannot pass a binary location, see
    # settings_reports.py); the browser gets HOME and XDG directories of its own under the state dir.
    home = browser_dir(settings)
    chromium_dir = str(PurePosixPath(settings.reports.webdriver.chromium_path).parent)
    return chromium_dir + ":", {"HOME": home, "XDG_CONFIG_HOME": f"{home}/config", "XDG_CACHE_HOME": f"{home}/cache"}


def browser_environment(settings: Settings, inherited: dict[str, str]) -> dict[str, str]:
    """chromedriver's (and so Chromium's) environment, given the worker's: what the rendered config builds."""
    path_prefix, overrides = _browser_overrides(settings)
    return {**inherited, "PATH": path_prefix + inherited.get("PATH", "/usr/bin:/bin"), **overrides}


def _browser_env_code(settings: Settings) -> str:
    path_prefix, overrides = _browser_overrides(settings)
    entries = [f"    {k!r}: {v!r},\n" for k, v in overrides.items()]
    return (
        "{\n    **os.environ,\n"
        f"    'PATH': {path_prefix!r} + os.environ.get('PATH', '/usr/bin:/bin'),\n" + "".join(entries) + "}"
    )


def webdriver_base_url(settings: Settings) -> str:
    """WEBDRIVER_BASEURL: where the worker's browser opens Superset (this host's web unless set)."""
    return settings.reports.webdriver.base_url or web_url(settings)


def executor(settings: Settings) -> str:
    """The user reports run as (screenshots and alert queries)."""
    return settings.reports.executor or settings.admin.username


def _read_call(settings: Settings, credential: str) -> str:
    """Code that reads one secret file at import (render.py's prelude defines _secret)."""
    where, path = secret_files(settings)[credential]
    return f"_secret({where!r}, {path!r}, {credential!r})"


def _scheduler_window(settings: Settings) -> list[str]:
    # reports.scheduler takes "now" as its message's expiry minus CELERY_BEAT_SCHEDULER_EXPIRES (a week by
    # default), so the two must be equal: with the beat entry's expires_seconds (3600) and the default, it
    # scheduled every report a week in the past. One value: the beat entry's.
    expires = [e.expires_seconds for e in settings.celery.beat_schedule.values() if e.task == "reports.scheduler"]
    if not expires or expires[0] is None:
        return []
    return [
        f"CELERY_BEAT_SCHEDULER_EXPIRES = timedelta(seconds={expires[0]})  # celery.beat_schedule's expires_seconds"
    ]


# With GLOBAL_ASYNC_QUERIES the chart a report's browser opens asks a Celery worker process for its data,
# while the report itself holds one: with as many reports due as worker processes, none got its data
# and every screenshot failed after SCREENSHOT_LOAD_WAIT (seen: "stale element" after 61 s with 2
# processes and 2 reports). The report browser's chart-data requests (its user agent) are answered
# synchronously by the web instead (the frontend takes a 200 as a cached result); everyone else keeps
# GAQ. Only chart-data paths: page bootstrap data, which carries the flags, is cached per user for 60 s
# and must stay the same for the executor's own browser sessions. A user's IS_FEATURE_ENABLED_FUNC in
# extra_config replaces this one.
_SYNC_CHARTS_FOR_REPORTS = f"""

def IS_FEATURE_ENABLED_FUNC(feature, default):
    if feature == 'GLOBAL_ASYNC_QUERIES' and default:
        from flask import has_request_context, request

        if (
            has_request_context()
            and request.path.startswith(('/api/v1/chart/', '/superset/explore_json/'))
            and {REPORTS_USER_AGENT_MARKER!r} in (request.headers.get('User-Agent') or '')
        ):
            return False
    return bool(default)
"""

# Superset 6.1's reports.execute logs its run with scheduled_dttm = the task's eta, which Celery hands
# over as an ISO string; SQLAlchemy's SQLite DateTime refuses strings, so on SQLite metadata every run
# failed ("SQLite DateTime type only accepts Python datetime"). The worker turns it into a datetime first.
_ETA_FIX = """

def _reports_eta_as_datetime(task=None, **_kwargs):
    request = getattr(task, 'request', None)
    if getattr(task, 'name', None) == 'reports.execute' and isinstance(getattr(request, 'eta', None), str):
        request.eta = datetime.fromisoformat(request.eta)


task_prerun.connect(_reports_eta_as_datetime, weak=False)
"""


def _lines(name: str, value: Any) -> str:
    return f"{name} = {value!r}"


def render_reports(settings: Settings) -> str:
    """The reports section of superset_config.py (a comment only while reports are off)."""
    r = settings.reports
    if not r.enabled:
        return "# Alerts & Reports are off (reports.enabled)."
    smtp, wd = r.smtp, r.webdriver
    slack = f"lambda: {_read_call(settings, 'slack_token')}" if r.slack.token_file else "None"  # read at send
    service = (
        "{\n"
        f"        'executable_path': {wd.chromedriver_path!r},\n"
        "        'log_output': '/dev/null',\n"
        "        'service_args': [],\n"
        "        'port': 0,\n"
        "        'env': _REPORTS_BROWSER_ENV,\n"
        "    }"
    )
    base_url = webdriver_base_url(settings)
    return "\n".join(
        [
            "# Alerts & Reports (reports.*): beat sends reports.scheduler every minute, the worker runs each",
            "# report as the executor user, takes the screenshot with headless Chromium and sends it by e-mail.",
            "from datetime import datetime, timedelta  # noqa: E402",
            "",
            "from celery.signals import task_prerun  # noqa: E402",
            "",
            *_scheduler_window(settings),
            _ETA_FIX,
            _SYNC_CHARTS_FOR_REPORTS,
            "FEATURE_FLAGS['ALERT_REPORTS'] = True",
            _lines("ALERT_REPORTS_NOTIFICATION_DRY_RUN", False),
            "# Only when Superset loads this module (superset.config imported the type already): importing",
            "# superset.tasks.types elsewhere would import all of Superset (seconds, e.g. for verify).",
            "if 'superset.config' in __import__('sys').modules:",
            "    from superset.tasks.types import FixedExecutor",
            "",
            f"    ALERT_REPORTS_EXECUTORS = [FixedExecutor({executor(settings)!r})]",
            _lines("SMTP_HOST", smtp.host or "localhost"),
            _lines("SMTP_PORT", smtp.port),
            _lines("SMTP_STARTTLS", smtp.starttls),
            _lines("SMTP_SSL", smtp.ssl),
            _lines("SMTP_SSL_SERVER_AUTH", smtp.verify_certificate),
            _lines("SMTP_USER", smtp.user),
            f"SMTP_PASSWORD = {_read_call(settings, 'smtp_password') if smtp.password_file else None}",
            _lines("SMTP_MAIL_FROM", smtp.mail_from),
            f"SLACK_API_TOKEN = {slack}",
            _lines("WEBDRIVER_TYPE", "chrome"),
            _lines("WEBDRIVER_OPTION_ARGS", browser_args(settings)),
            f"_REPORTS_BROWSER_ENV = {_browser_env_code(settings)}",
            "# The driver's path through selenium's Service (no download by Selenium Manager). No top-level",
            "# binary_location: 6.1 would pass it to the WebDriver constructor too (TypeError).",
            "WEBDRIVER_CONFIGURATION = {",
            "    'options': {'capabilities': {}, 'preferences': {}},",
            f"    'service': {service},",
            "}",
            _lines("WEBDRIVER_BASEURL", base_url),
            _lines("WEBDRIVER_BASEURL_USER_FRIENDLY", settings.web.public_url or base_url),
            _lines("SCREENSHOT_LOCATE_WAIT", wd.locate_seconds),
            _lines("SCREENSHOT_LOAD_WAIT", wd.load_seconds),
            _lines("SCREENSHOT_SELENIUM_HEADSTART", wd.headstart_seconds),
            _lines("SCREENSHOT_SELENIUM_ANIMATION_WAIT", wd.animation_seconds),
        ]
    )
