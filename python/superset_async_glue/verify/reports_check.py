"""The Alerts & Reports check: its facts (plain values) and its verdict (a pure function).

Gathered by reports_io.py when reports are enabled: the beat entry in the rendered config, the
executor user in the metadata database, a headless browser session started from the worker's
environment (its interpreter, environment and user), and the SMTP server's answer to EHLO (no mail).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from . import diagnosis as dx
from .model import REPORTS, CheckResult, failed, passed, skipped, warned

SCHEDULER_TASK = "reports.scheduler"
SLOW_BROWSER_SECONDS = 30.0  # a start slower than this eats most of a report's screenshot budget


@dataclass(frozen=True)
class BrowserStart:
    """A headless browser session like a report's: did a page run its script, how long it took, and how
    it was started (interpreter, user); `message` is the browser's or chromedriver's own error."""

    ok: bool
    seconds: float
    how: str
    message: str = ""


@dataclass(frozen=True)
class SmtpAnswer:
    """The SMTP server's answer to a connection and EHLO (STARTTLS when configured); no mail is sent."""

    server: str  # host:port
    mode: Literal["plain", "starttls", "ssl"]
    ok: bool
    reply: str  # the EHLO reply's first line, or the error


@dataclass(frozen=True)
class ReportsFacts:
    """The check's input; `executor_state` is "active", "inactive", "missing" or "unknown" (then `executor_error`)."""

    enabled: bool
    beat_here: bool  # settings.beat.enabled: this host runs beat
    beat_tasks: Mapping[str, str] | None  # beat_schedule entry -> task; None when the config did not import
    executor: str
    executor_state: str
    executor_error: str = ""
    browser: BrowserStart | None = None
    smtp: SmtpAnswer | None = None  # None: no reports.smtp.host (Slack only)
    slack: bool = False


def judge_reports(facts: ReportsFacts) -> CheckResult:
    """Reports can run and be delivered: scheduled, an executor, a browser, a mail server."""
    if not facts.enabled:
        return skipped(REPORTS, "reports.enabled is false in the settings")
    problems: list[tuple[str, str]] = []
    if facts.beat_tasks is not None and SCHEDULER_TASK not in facts.beat_tasks.values():
        problems.append((f"the beat schedule has no {SCHEDULER_TASK} entry: no report is ever run", dx.BEAT_MISSING))
    if facts.executor_state == "missing":
        problems.append((f"the executor user {facts.executor!r} does not exist", dx.REPORTS_EXECUTOR))
    elif facts.executor_state == "inactive":
        problems.append((f"the executor user {facts.executor!r} is inactive", dx.REPORTS_EXECUTOR))
    if facts.browser is not None and not facts.browser.ok:
        problems.append(
            (f"the browser did not start ({facts.browser.how}): {facts.browser.message}", dx.REPORTS_BROWSER)
        )
    if facts.smtp is not None and not facts.smtp.ok:
        problems.append(
            (f"SMTP {facts.smtp.server} ({facts.smtp.mode}) did not answer EHLO: {facts.smtp.reply}", dx.REPORTS_SMTP)
        )
    if problems:
        return failed(REPORTS, "; ".join(t for t, _ in problems), tuple(dict.fromkeys(m for _, m in problems)))
    notes = []
    if facts.executor_state == "unknown":
        notes.append(f"executor {facts.executor!r} not checked ({facts.executor_error})")
    if facts.browser is not None and facts.browser.seconds > SLOW_BROWSER_SECONDS:
        notes.append(f"the browser took {facts.browser.seconds:.0f}s to run a trivial page")
    summary = _summary(facts)
    if notes:
        modes = (dx.REPORTS_BROWSER,) if facts.browser and facts.browser.seconds > SLOW_BROWSER_SECONDS else ()
        return warned(REPORTS, f"{summary}; but {'; '.join(notes)}", modes or (dx.REPORTS_EXECUTOR,))
    return passed(REPORTS, summary)


def _summary(facts: ReportsFacts) -> str:
    parts = [f"executor {facts.executor!r}"]
    if facts.beat_tasks is not None:
        parts.append(f"{SCHEDULER_TASK} scheduled" + ("" if facts.beat_here else " (beat on another host)"))
    if facts.browser is not None:
        parts.append(f"browser started in {facts.browser.seconds:.1f}s ({facts.browser.how})")
    if facts.smtp is not None:
        parts.append(f"SMTP {facts.smtp.server} answered EHLO ({facts.smtp.mode}, no mail sent)")
    if facts.slack:
        parts.append("Slack token configured (not contacted)")
    return ", ".join(parts)
