"""The Alerts & Reports check's gather layer: the I/O behind reports_check.ReportsFacts."""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

from .. import procfs
from ..render_reports import browser_args, browser_environment, executor
from .facts import PlatformView
from .reports_check import BrowserStart, ReportsFacts, SmtpAnswer
from .target import Target

SMTP_TIMEOUT = 10.0
BROWSER_TIMEOUT = 60.0

# A report's browser in small: chromedriver by path (selenium's Service), the rendered arguments and
# environment, a page that must run its script. Run by the worker's interpreter as the worker's user.
_SESSION = r"""
import json, sys
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
config = json.loads(sys.stdin.read())
options = webdriver.ChromeOptions()
for arg in config["args"]:
    options.add_argument(arg)
driver = webdriver.Chrome(options=options, service=Service(executable_path=config["driver"], env=config["env"]))
try:
    driver.get("data:text/html,<p id=x></p><script>document.getElementById('x').textContent = 6 * 7</script>")
    text = driver.find_element("id", "x").text
finally:
    driver.quit()
sys.exit(0 if text == "42" else "the page's script did not run (found %r)" % text)
"""


def reports_facts(target: Target, platform: PlatformView) -> ReportsFacts:
    """Everything the reports verdict needs; only the enabled flag when reports are off."""
    s = target.settings
    if not s.reports.enabled:
        return ReportsFacts(enabled=False, beat_here=s.beat.enabled, beat_tasks=None, executor="", executor_state="")
    user = executor(s)
    state, error = executor_state(target, user, platform)
    return ReportsFacts(
        enabled=True,
        beat_here=s.beat.enabled,
        beat_tasks=target.config.beat_tasks(),
        executor=user,
        executor_state=state,
        executor_error=error,
        browser=start_browser(target, platform),
        smtp=smtp_answer(target) if s.reports.smtp.host else None,
        slack=s.reports.slack.token_file is not None,
    )


# The executor's row in Superset's user table, read by the worker's interpreter as the worker's user:
# a metadata database with peer authentication (the module's createLocally) knows that user, not root.
# The URI, which may hold a password, goes through stdin, never the command line.
_EXECUTOR_LOOKUP = r"""
import json, sys
import sqlalchemy
config = json.loads(sys.stdin.read())
try:
    engine = sqlalchemy.create_engine(config["uri"])
    try:
        with engine.connect() as connection:
            row = connection.execute(
                sqlalchemy.text("SELECT active FROM ab_user WHERE username = :name"), {"name": config["username"]}
            ).first()
    finally:
        engine.dispose()
except Exception as err:  # an unreachable database is a fact of this check, not a crash
    print(json.dumps({"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}))
else:
    print(json.dumps({"active": None if row is None else bool(row[0])}))
"""
LOOKUP_TIMEOUT = 30.0


def executor_state(target: Target, username: str, platform: PlatformView) -> tuple[str, str]:
    """("active" | "inactive" | "missing", "") from Superset's user table, or ("unknown", why)."""
    uri = target.config.get("SQLALCHEMY_DATABASE_URI")
    if not isinstance(uri, str):
        return "unknown", "the config gives no SQLALCHEMY_DATABASE_URI"
    answer = _look_up(uri, username, platform)
    if isinstance(answer, str):
        return "unknown", answer
    if answer["active"] is None:
        return "missing", ""
    return ("active" if answer["active"] else "inactive"), ""


def _look_up(uri: str, username: str, platform: PlatformView) -> dict[str, bool | None] | str:
    """_EXECUTOR_LOOKUP's answer, or why there is none."""
    python, environ, uid, gid = _worker(platform)
    interpreter = python or sys.executable
    drop = uid is not None and os.geteuid() == 0 and uid != 0
    try:
        done = subprocess.run(
            [interpreter, "-c", _EXECUTOR_LOOKUP],
            input=json.dumps({"uri": uri, "username": username}),
            capture_output=True,
            text=True,
            timeout=LOOKUP_TIMEOUT,
            env=environ if environ is not None else dict(os.environ),
            check=False,
            user=uid if drop else None,
            group=gid if drop else None,
            extra_groups=[] if drop else None,
        )
    except subprocess.TimeoutExpired:
        return f"the metadata database gave no answer within {LOOKUP_TIMEOUT:.0f}s"
    except OSError as err:
        return f"cannot run {interpreter}: {err.strerror}"
    try:
        answer: dict[str, bool | None] = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        lines = [line for line in done.stderr.splitlines() if line.strip()]  # e.g. no sqlalchemy there
        return lines[-1][:200] if lines else f"exit code {done.returncode}"
    return str(answer["error"]) if "error" in answer else answer


def _worker(platform: PlatformView) -> tuple[str | None, dict[str, str] | None, int | None, int | None]:
    """The worker's interpreter, environment, uid and gid, as far as /proc shows them."""
    pid = platform.pid("worker")
    if pid is None:
        return None, None, None, None
    argv = procfs.cmdline(pid)
    python = argv[0] if argv and Path(argv[0]).name.startswith("python") else None
    ids: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid"):
                ids[key] = int(value.split()[0])
    except OSError:
        pass
    return python, procfs.environ(pid), ids.get("Uid"), ids.get("Gid")


def start_browser(target: Target, platform: PlatformView) -> BrowserStart:
    """Start the report browser as the worker would (its interpreter, environment and user, when this host
    runs the worker and /proc shows it), run a trivial page, stop it."""
    python, environ, uid, gid = _worker(platform)
    how = "the worker's interpreter, environment and user" if python and environ is not None else "verify's own"
    settings = target.settings
    env = browser_environment(settings, environ if environ is not None else dict(os.environ))
    config = {"args": browser_args(settings), "driver": settings.reports.webdriver.chromedriver_path, "env": env}
    # As the worker's user when verify runs as root and the worker does not: same files, same limits.
    drop = uid is not None and os.geteuid() == 0 and uid != 0
    began = time.monotonic()
    try:
        done = subprocess.run(
            [python or sys.executable, "-c", _SESSION],
            input=json.dumps(config),
            capture_output=True,
            text=True,
            timeout=BROWSER_TIMEOUT,
            env=env,
            check=False,
            user=uid if drop else None,
            group=gid if drop else None,
            extra_groups=[] if drop else None,
        )
    except subprocess.TimeoutExpired:
        return BrowserStart(False, time.monotonic() - began, how, f"no answer within {BROWSER_TIMEOUT:.0f}s")
    except OSError as err:
        return BrowserStart(False, time.monotonic() - began, how, f"cannot run {python}: {err.strerror}")
    seconds = time.monotonic() - began
    if done.returncode == 0:
        return BrowserStart(True, seconds, how)
    return BrowserStart(False, seconds, how, _browser_message(done.stderr))


def _browser_message(stderr: str) -> str:
    """The line of the error that names the cause (selenium's 'Message: ...'), without the stack."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    message = next((line for line in lines if "Message:" in line), lines[-1] if lines else "no error output")
    return message[:300]


def smtp_answer(target: Target) -> SmtpAnswer:
    """Connect, EHLO (and STARTTLS with a second EHLO when configured), QUIT: no login, no mail."""
    smtp = target.settings.reports.smtp
    host = smtp.host or "localhost"
    server = f"{host}:{smtp.port}"
    mode: Literal["plain", "starttls", "ssl"] = "ssl" if smtp.ssl else ("starttls" if smtp.starttls else "plain")
    context = ssl.create_default_context()
    if not smtp.verify_certificate:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        client = (
            smtplib.SMTP_SSL(host, smtp.port, timeout=SMTP_TIMEOUT, context=context)
            if smtp.ssl
            else smtplib.SMTP(host, smtp.port, timeout=SMTP_TIMEOUT)
        )
        with client:
            code, reply = client.ehlo()
            if code == 250 and smtp.starttls:
                client.starttls(context=context)
                code, reply = client.ehlo()
            first = reply.decode(errors="replace").splitlines()[0] if reply else ""
            return SmtpAnswer(server, mode, code == 250, f"{code} {first}".strip())
    except (OSError, smtplib.SMTPException) as err:
        return SmtpAnswer(server, mode, False, f"{type(err).__name__}: {err}")
