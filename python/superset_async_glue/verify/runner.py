"""Run the nine checks concurrently and hand each result to `emit` as soon as it is known.

Each check is a gather (I/O, returning facts) followed by its verdict (judge.py, pure). The probe in
the web's environment starts first; the gathers that several checks share run once through `Once`:
the Redis PINGs (checks 2, 3 and the worker survey) and the worker survey (checks 4, 6, 8 and 9). A check that
hangs past its deadline fails with that fact instead of holding the run up.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Generic, TypeVar

from ..settings import Settings
from . import diagnosis as dx
from . import judge
from .end_to_end import end_to_end_facts
from .facts import Ping, PlatformView, RedisFacts, WorkerSurvey
from .flower_io import flower_facts
from .model import (
    BEAT,
    CONFIG,
    END_TO_END,
    FLOWER,
    REDIS_PING,
    REDIS_ROLES,
    REPORTS,
    SERVICES,
    WEB_REDIS,
    WORKER_REDIS,
    WORKERS,
    CheckResult,
    CheckSpec,
    VerifyReport,
    failed,
)
from .platform_io import beat_facts, detect_platform, service_facts, web_python
from .redact import Redactor
from .redis_io import redis_facts
from .reports_check import judge_reports
from .reports_io import reports_facts
from .target import Target, VerifyOptions, config_facts, load_target, state_dir_of
from .web_env import ProbeRun, web_env_facts, web_import
from .workers import round_trip, survey_workers

T = TypeVar("T")
F = TypeVar("F")
DEADLINE = 45.0  # seconds for any check but the end-to-end one


class Once(Generic[T]):
    """A value computed by the first caller; later callers (other threads) wait for it."""

    def __init__(self, compute: Callable[[], T]) -> None:
        self._compute = compute
        self._lock = threading.Lock()
        self._value: T | None = None
        self._done = False

    def get(self) -> T:
        with self._lock:
            if not self._done:
                self._value = self._compute()
                self._done = True
            return self._value  # type: ignore[return-value]  # set above


class Run:
    """One verify run's shared state: the target, the platform, the probe and the shared gathers."""

    def __init__(self, target: Target, platform: PlatformView, probe: ProbeRun) -> None:
        self.target = target
        self.platform = platform
        self.redactor = Redactor(target.secrets)
        self.probe = probe
        self.redis: Once[RedisFacts] = Once(lambda: redis_facts(target))
        self.survey: Once[WorkerSurvey] = Once(lambda: survey_workers(target, self._broker_ping()))

    def _broker_ping(self) -> Ping | None:
        return next((p for p in self.redis.get().pings if p.role == "broker"), None)

    def _pools(self) -> tuple[tuple[str, str], ...]:
        return tuple((w.name, w.pool) for w in self.survey.get().workers)

    def checks(self) -> dict[CheckSpec, Callable[[], CheckResult]]:
        t, p = self.target, self.platform
        return {
            SERVICES: _check(lambda: service_facts(t, p), judge.judge_services),
            REDIS_PING: _check(self.redis.get, judge.judge_redis_ping),
            REDIS_ROLES: _check(self.redis.get, judge.judge_redis_roles),
            WORKERS: _check(self.survey.get, judge.judge_workers),
            BEAT: _check(lambda: beat_facts(t, p), judge.judge_beat),
            CONFIG: _check(lambda: config_facts(t, web_import(self.probe), self._pools()), judge.judge_config),
            WEB_REDIS: _check(lambda: web_env_facts(self.probe, t.config.error), judge.judge_web_redis),
            WORKER_REDIS: _check(lambda: round_trip(t, self.survey.get()), judge.judge_worker_redis),
            END_TO_END: _check(lambda: end_to_end_facts(t, p, self.survey.get), judge.judge_end_to_end),
        } | (
            {FLOWER: _check(lambda: flower_facts(t.settings, self.survey.get()), judge.judge_flower)}
            if t.settings.flower.enabled
            else {}
        )

    def reports_check(self) -> dict[CheckSpec, Callable[[], CheckResult]]:
        """Check 11, while reports.enabled: reports_check.py judges what reports_io.py gathers."""
        if not self.target.settings.reports.enabled:
            return {}
        return {REPORTS: _check(lambda: reports_facts(self.target, self.platform), judge_reports)}

    def finish(self, result: CheckResult, seconds: float) -> CheckResult:
        """The result as shown: its latency set, every string redacted."""
        r = self.redactor
        return replace(result, reason=r.text(result.reason), details=r.data(dict(result.details)), seconds=seconds)


def _check(gather: Callable[[], F], verdict: Callable[[F], CheckResult]) -> Callable[[], CheckResult]:
    """A check: gather its facts, judge them; the facts are the result's details (--json)."""

    def check() -> CheckResult:
        facts = gather()
        return replace(verdict(facts), details=asdict(facts))  # type: ignore[call-overload]  # F: a dataclass

    return check


def _import_clients() -> None:
    """Import the Celery, kombu and redis-py modules the checks use here, once, before their threads
    start: threads importing overlapping packages at once can see a module half-initialised ("cannot
    import name ... most likely due to a circular import"), which the probe did before it imported in
    one thread (probe.py)."""
    import celery.app.annotations  # noqa: PLC0415
    import celery.backends.redis  # noqa: F401, PLC0415
    import kombu.transport.redis  # noqa: F401, PLC0415


def _guard(spec: CheckSpec, check: Callable[[], CheckResult]) -> CheckResult:
    try:
        return check()
    except Exception as err:  # a check that crashes is a failed check, not a crashed verify
        return failed(spec, f"the check itself failed: {type(err).__name__}: {err}", (dx.UNKNOWN,))


def run_verify(options: VerifyOptions, settings: Settings, emit: Callable[[CheckResult], None]) -> VerifyReport:
    """Run every check; `emit` sees each result when it is known; return the report (number order)."""
    started = time.monotonic()
    platform = detect_platform(options, state_dir_of(options, settings), settings.sql_lab.lanes)
    probe = ProbeRun(settings, options.config_path, *web_python(platform, options.web_python))
    try:
        target = load_target(options, settings)
    except BaseException:
        probe.stop()
        raise
    probe.send(target.config)
    _import_clients()
    run = Run(target, platform, probe)
    done: queue.Queue[CheckResult] = queue.Queue()
    checks = run.checks() | run.reports_check()
    specs = tuple(checks)  # the nine, then the optional ones the settings enable
    for spec, check in checks.items():

        def work(spec: CheckSpec = spec, check: Callable[[], CheckResult] = check) -> None:
            began = time.monotonic()
            result = _guard(spec, check)
            done.put(run.finish(result, time.monotonic() - began))

        threading.Thread(target=work, name=f"verify-{spec.key}", daemon=True).start()
    results: dict[int, CheckResult] = {}
    try:
        while len(results) < len(specs):
            deadline = DEADLINE if END_TO_END.number in results else options.query_timeout + DEADLINE
            remaining = started + deadline - time.monotonic()
            try:
                result = done.get(timeout=max(0.0, remaining))
            except queue.Empty:
                for spec in specs:
                    if spec.number not in results:
                        late = failed(spec, f"did not finish within {deadline:.0f}s", (dx.UNKNOWN,))
                        results[spec.number] = run.finish(late, time.monotonic() - started)
                        emit(results[spec.number])
                break
            results[result.spec.number] = result
            emit(result)
    finally:
        run.probe.stop()
    ordered = tuple(results[spec.number] for spec in specs)
    return VerifyReport(
        settings_path=str(options.settings_path),
        config_path=str(options.config_path),
        platform=platform.kind,
        results=ordered,
        findings=dx.diagnose(ordered),
        seconds=time.monotonic() - started,
    )
