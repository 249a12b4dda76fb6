"""Run the nine checks concurrently and hand each result to `emit` as soon as it is known.

The slow part (Superset's config import in the web's environment) starts first; the other checks
share two computations (the Redis PINGs and the worker survey) through `Once`. A check that hangs
past its deadline fails with that fact instead of holding the run up.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from ..settings import Settings
from . import diagnosis as dx
from .beat import check_beat
from .celery_checks import WorkerSurvey, check_worker_redis, check_workers, survey_workers
from .end_to_end import check_end_to_end
from .model import (
    BEAT,
    CHECKS,
    CONFIG,
    END_TO_END,
    REDIS_PING,
    REDIS_ROLES,
    SERVICES,
    WEB_REDIS,
    WORKER_REDIS,
    WORKERS,
    CheckResult,
    CheckSpec,
    Outcome,
    Status,
    VerifyReport,
    failed,
)
from .redact import Redactor
from .redis_checks import Ping, check_redis_ping, check_redis_roles, ping_all
from .services import PlatformView, check_services, detect_platform, web_python
from .target import Target, VerifyOptions, load_target, state_dir_of
from .web_env import ProbeRun, check_effective_config, check_web_redis

T = TypeVar("T")
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
    """One verify run's shared state."""

    def __init__(self, target: Target, platform: PlatformView, probe: ProbeRun) -> None:
        self.target = target
        self.platform = platform
        self.redactor = Redactor(target.secrets)
        self.probe = probe
        self.pings: Once[list[Ping]] = Once(lambda: ping_all(target.config))
        self.survey: Once[WorkerSurvey] = Once(lambda: survey_workers(target, self._broker_ping()))

    def _broker_ping(self) -> Ping | None:
        return next((p for p in self.pings.get() if p.endpoint.role == "broker"), None)

    def web_config(self) -> str:
        return str(self.target.options.config_path)

    def checks(self) -> dict[CheckSpec, Callable[[], Outcome]]:
        t = self.target
        return {
            SERVICES: lambda: check_services(t, self.platform),
            REDIS_PING: lambda: check_redis_ping(t, self.pings.get()),
            REDIS_ROLES: lambda: check_redis_roles(t, self.pings.get()),
            WORKERS: lambda: check_workers(t, self.survey.get(), self.web_config()),
            BEAT: lambda: check_beat(t, self.platform),
            CONFIG: lambda: check_effective_config(t, self.probe, self.survey.get()),
            WEB_REDIS: lambda: check_web_redis(self.probe),
            WORKER_REDIS: lambda: check_worker_redis(t, self.survey.get()),
            END_TO_END: lambda: check_end_to_end(t, self.platform, self.survey.get),
        }

    def result(self, spec: CheckSpec, outcome: Outcome, seconds: float) -> CheckResult:
        r = self.redactor
        return CheckResult(
            spec,
            outcome.status,
            r.text(outcome.reason),
            seconds,
            r.text(outcome.remedy) if outcome.remedy else None,
            outcome.modes,
            r.data(dict(outcome.details)),
        )


def _guard(check: Callable[[], Outcome]) -> Outcome:
    try:
        return check()
    except Exception as err:  # a check that crashes is a failed check, not a crashed verify
        return failed(
            f"the check itself failed: {type(err).__name__}: {err}",
            "report this with the output of verify --json",
            (dx.UNKNOWN,),
        )


def run_verify(options: VerifyOptions, settings: Settings, emit: Callable[[CheckResult], None]) -> VerifyReport:
    """Run every check; `emit` sees each result when it is known; return the report (number order)."""
    started = time.monotonic()
    platform = detect_platform(options, state_dir_of(options, settings))
    probe = ProbeRun(settings, options.config_path, *web_python(platform, options.web_python))
    try:
        target = load_target(options, settings)
    except BaseException:
        probe.stop()
        raise
    probe.send(target.config)
    run = Run(target, platform, probe)
    done: queue.Queue[CheckResult] = queue.Queue()
    for spec, check in run.checks().items():

        def work(spec: CheckSpec = spec, check: Callable[[], Outcome] = check) -> None:
            began = time.monotonic()
            outcome = _guard(check)
            done.put(run.result(spec, outcome, time.monotonic() - began))

        threading.Thread(target=work, name=f"verify-{spec.key}", daemon=True).start()
    results: dict[int, CheckResult] = {}
    try:
        while len(results) < len(CHECKS):
            deadline = DEADLINE if END_TO_END.number in results else options.query_timeout + DEADLINE
            remaining = started + deadline - time.monotonic()
            try:
                result = done.get(timeout=max(0.0, remaining))
            except queue.Empty:
                for spec in CHECKS:
                    if spec.number not in results:
                        late = failed(
                            f"did not finish within {deadline:.0f}s",
                            "see what hangs (Redis, the web, or the web's Python environment)",
                            (dx.UNKNOWN,),
                        )
                        results[spec.number] = run.result(spec, late, time.monotonic() - started)
                        emit(results[spec.number])
                break
            results[result.spec.number] = result
            emit(result)
    finally:
        run.probe.stop()
    ordered = tuple(results[spec.number] for spec in CHECKS)
    return VerifyReport(
        settings_path=str(options.settings_path),
        config_path=str(options.config_path),
        platform=platform.kind,
        results=ordered,
        findings=dx.diagnose(ordered),
        seconds=time.monotonic() - started,
    )


__all__ = ["Status", "run_verify"]
