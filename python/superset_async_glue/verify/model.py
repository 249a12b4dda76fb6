"""What a verify run produces: one CheckResult per check, and the report that holds them."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Status(enum.Enum):
    """A check's verdict. A skip is never a pass: it always says why the check did not run."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"


class ExitCode(enum.IntEnum):
    """Exit codes of `superset-async verify` (docs/verify.md)."""

    OK = 0
    CHECK_FAILED = 1
    USAGE = 2


@dataclass(frozen=True)
class CheckSpec:
    """A check's fixed identity: its number in the report, a stable key for JSON, and a title."""

    number: int
    key: str
    title: str


SERVICES = CheckSpec(1, "services", "services up")
REDIS_PING = CheckSpec(2, "redis_ping", "Redis PING on the config's URLs")
REDIS_ROLES = CheckSpec(3, "redis_roles", "Redis DB per role")
WORKERS = CheckSpec(4, "workers", "Celery workers")
BEAT = CheckSpec(5, "beat", "Celery beat")
CONFIG = CheckSpec(6, "config", "Superset's effective config")
WEB_REDIS = CheckSpec(7, "web_redis", "web -> Redis (web's Python)")
WORKER_REDIS = CheckSpec(8, "worker_redis", "worker -> Redis")
END_TO_END = CheckSpec(9, "end_to_end", "end to end (SQL Lab, GAQ)")
# Run only when the settings enable it (flower.enabled): numbered after the nine.
FLOWER = CheckSpec(10, "flower", "Flower sees the workers")
REPORTS = CheckSpec(11, "reports", "Alerts & Reports")  # reports.enabled (reports_check.py)
OPTIONAL_CHECKS: tuple[CheckSpec, ...] = (FLOWER, REPORTS)
CHECKS: tuple[CheckSpec, ...] = (
    SERVICES,
    REDIS_PING,
    REDIS_ROLES,
    WORKERS,
    BEAT,
    CONFIG,
    WEB_REDIS,
    WORKER_REDIS,
    END_TO_END,
)


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict, short reason and the failure modes it points at (their fixes are the remedy:
    diagnosis.MODES); the runner adds the facts it was judged from (details, for --json) and its latency."""

    spec: CheckSpec
    status: Status
    reason: str
    modes: tuple[str, ...] = ()  # failure-mode codes of diagnosis.py
    details: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def passed(spec: CheckSpec, reason: str) -> CheckResult:
    return CheckResult(spec, Status.PASS, reason)


def warned(spec: CheckSpec, reason: str, modes: tuple[str, ...]) -> CheckResult:
    return CheckResult(spec, Status.WARN, reason, modes)


def failed(spec: CheckSpec, reason: str, modes: tuple[str, ...]) -> CheckResult:
    return CheckResult(spec, Status.FAIL, reason, modes)


def skipped(spec: CheckSpec, reason: str) -> CheckResult:
    return CheckResult(spec, Status.SKIPPED, reason)


@dataclass(frozen=True)
class Finding:
    """A named failure mode, the checks that showed it, and how to fix it."""

    code: str
    title: str
    fix: str
    checks: tuple[int, ...]


@dataclass(frozen=True)
class VerifyReport:
    """The whole run: every check in number order, the diagnosis, and how long it took."""

    settings_path: str
    config_path: str
    platform: str
    results: tuple[CheckResult, ...]
    findings: tuple[Finding, ...]
    seconds: float

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.CHECK_FAILED if self.count(Status.FAIL) else ExitCode.OK
