"""Checks 6 and 7, from the web's own Python environment (probe.py run by the web's interpreter).

One subprocess serves both: it publishes first (check 7 is known in about half a second), then
imports `superset.config` the way Superset does (the slow part, about 4 s here), so verify starts it
before every other check.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections import deque
from pathlib import Path
from typing import Any

from ..commands import role_environment
from ..render import feature_flags
from ..secret_files import secret_file_problems
from ..settings import Settings
from . import diagnosis as dx
from .celery_checks import UPSTREAM_SOFT_LIMIT, WorkerSurvey
from .model import Outcome, failed, passed, warned
from .target import SQLLAB_TASK, ConfigView, RedisEndpoint, Target

PROBE = Path(__file__).with_name("probe.py")
# Run probe.py by path without putting its directory (or the working directory) on sys.path: the
# glue's module names must not shadow the web environment's (or the standard library's).
_RUN_PROBE = (
    "import runpy, sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; "
    "runpy.run_path(sys.argv[1], run_name='__main__')"
)
_REDIS_KEYS = {
    "host",
    "port",
    "db",
    "username",
    "password",
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl",
}


def _probe_endpoint(endpoint: RedisEndpoint) -> dict[str, Any] | None:
    """An endpoint as JSON the probe can rebuild with the web's redis-py (the broker goes through kombu)."""
    base = {"role": endpoint.role, "client": endpoint.client}
    if endpoint.kind == "kombu":
        return None
    if endpoint.kind in ("redis_url", "celery_backend") and endpoint.url:
        url = endpoint.url
        if url.startswith("redis+socket://"):
            url = "unix://" + url.removeprefix("redis+socket://")
        return {**base, "kind": "redis_url", "url": url, "kwargs": dict(endpoint.kwargs)}
    kwargs = {k: v for k, v in endpoint.kwargs.items() if k in _REDIS_KEYS and v is not None}
    if endpoint.kwargs.get("path"):
        kwargs["unix_socket_path"] = endpoint.kwargs["path"]
    connection_class = endpoint.kwargs.get("connection_class")
    if connection_class is not None and "SSL" in getattr(connection_class, "__name__", ""):
        kwargs["ssl"] = True
    return {**base, "kind": "redis_kwargs", "kwargs": kwargs}


class ProbeRun:
    """The probe subprocess and the JSON parts it has written so far."""

    def __init__(self, settings: Settings, config_path: Path, python: str, how: str) -> None:
        """Start the probe at once (Superset's import is the slow part); `send` gives it the endpoints later."""
        self.python = python
        self.how = how
        self.parts: dict[str, dict[str, Any]] = {}
        self.stderr: deque[str] = deque(maxlen=40)
        self.start_error: str | None = None
        self._changed = threading.Condition()
        self._done = False
        env = {**_base_env(), **role_environment(settings, config_path.resolve())}
        try:
            self.process: subprocess.Popen[str] | None = subprocess.Popen(
                [python, "-c", _RUN_PROBE, str(PROBE)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd="/",
            )
        except OSError as err:
            self.process = None
            self.start_error = f"cannot run {python}: {err.strerror or err}"
            self._done = True
            return
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def send(self, view: ConfigView) -> None:
        """The endpoints to PING and the broker to publish to (with credentials: through stdin only)."""
        if self.process is None or self.process.stdin is None:
            return
        request = {
            "endpoints": [e for e in map(_probe_endpoint, view.endpoints) if e is not None],
            "broker": {
                "url": view.broker_url,
                "ssl": view.broker_options.get("broker_use_ssl"),
                "transport_options": view.broker_options.get("broker_transport_options"),
            },
        }
        try:
            self.process.stdin.write(json.dumps(request, default=str))
            self.process.stdin.close()
        except OSError:
            pass  # the probe already died: failure() reports its stderr

    def _read_stdout(self) -> None:
        assert self.process is not None and self.process.stdout is not None  # noqa: S101
        for line in self.process.stdout:
            try:
                part = json.loads(line)
            except ValueError:
                continue
            with self._changed:
                self.parts[str(part.get("part"))] = part
                self._changed.notify_all()
        self.process.wait()
        with self._changed:
            self._done = True
            self._changed.notify_all()

    def _read_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None  # noqa: S101
        for line in self.process.stderr:
            self.stderr.append(line.rstrip("\n"))

    def part(self, name: str, timeout: float) -> dict[str, Any] | None:
        with self._changed:
            self._changed.wait_for(lambda: name in self.parts or self._done, timeout)
            return self.parts.get(name)

    def failure(self) -> str:
        if self.start_error:
            return self.start_error
        code = self.process.poll() if self.process else None
        tail = " | ".join(line for line in list(self.stderr)[-6:] if line.strip())
        state = f"exit code {code}" if code is not None else "still running (timed out)"
        return f"the probe in {self.python} ended without an answer ({state}){': ' + tail if tail else ''}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _base_env() -> dict[str, str]:
    import os  # noqa: PLC0415

    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "SSL_CERT_FILE")
    # NIX_*: a Nix Python environment's wrapper finds its site-packages through them.
    return {k: v for k, v in os.environ.items() if k in keep or k.startswith("NIX_")}


def _version_tuple(text: str | None) -> tuple[int, ...]:
    parts = []
    for piece in (text or "0").split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def check_web_redis(probe: ProbeRun) -> Outcome:
    """Check 7: from the web's environment, PING every Redis client and publish through kombu."""
    part = probe.part("publish", timeout=30)
    if part is None:
        return failed(
            probe.failure(),
            "pass --web-python with the interpreter of the web's environment, or repair that environment",
            (dx.CONFIG_BROKEN,),
            python=probe.python,
        )
    versions = part.get("versions", {})
    env = (
        f"python {probe.python} ({probe.how}): kombu {versions.get('kombu')}, redis-py {versions.get('redis')}, "
        f"celery {versions.get('celery')}"
    )
    details = {
        "python": probe.python,
        "found": probe.how,
        "versions": versions,
        "pings": part.get("pings", []),
        "publish": part.get("publish", {}),
    }
    publish = part.get("publish", {})
    error = publish.get("error") or {}
    mismatch = _version_tuple(versions.get("kombu")) >= (5, 7) and _version_tuple(versions.get("redis")) < (6, 1)
    if "VersionMismatch" in str(error.get("type", "")) or mismatch:
        return failed(
            f"{env}: publish failed: {error.get('message') or 'kombu >= 5.7 needs redis-py >= 6.1'}",
            "install the locked celery==5.6.3 and kombu==5.6.2 in the web's environment (redis-py stays "
            "5.x for Superset 6.1) and restart web and worker",
            (dx.KOMBU_MISMATCH,),
            **details,
        )
    bad = [p for p in part.get("pings", []) if not p.get("ok")]
    if bad or not publish.get("ok"):
        texts = [f"{p['client']}: {p.get('error', {}).get('message')}" for p in bad]
        if not publish.get("ok"):
            texts.insert(0, f"kombu publish to the broker: {error.get('type', '')}: {error.get('message')}")
        modes: tuple[str, ...] = (dx.BROKER_UNREACHABLE,) if not publish.get("ok") else ()
        modes += (dx.REDIS_UNREACHABLE,) if bad else ()
        return failed(
            f"{env}: " + "; ".join(texts),
            "start Redis and make redis.* in the settings match it; then restart the web",
            modes,
            **details,
        )
    return passed(
        f"{env}: PONG on {len(part.get('pings', []))} clients; published and consumed a message on the "
        f"broker through kombu in {publish.get('ms')} ms",
        **details,
    )


def check_effective_config(target: Target, probe: ProbeRun, survey: WorkerSurvey | None) -> Outcome:
    """Check 6: superset.config as Superset loads it; results backend, flags, GAQ, and the enforced time limit."""
    settings = target.settings
    problems: list[tuple[str, str]] = []
    for problem in secret_file_problems(settings, missing_ok=False):
        mode = dx.GAQ_SECRET if problem.location.startswith("global_async_queries") else dx.CONFIG_BROKEN
        problems.append((str(problem), mode))
    part = probe.part("config", timeout=90)
    if part is None:
        problems.append((probe.failure(), dx.CONFIG_BROKEN))
        return _config_failed(problems, {})
    if not part.get("ok"):
        message = str(part.get("error", {}).get("message"))
        mode = dx.GAQ_SECRET if "global_async_queries" in message else dx.CONFIG_BROKEN
        if not any(text in message for text, _ in problems):
            problems.append((f"superset.config does not import: {part['error'].get('type')}: {message}", mode))
        return _config_failed(problems, {"error": part.get("error")})
    details = {k: v for k, v in part.items() if k not in ("part", "ok")}
    problems += _backend_and_flag_problems(target, part)
    soft, limit_problems = _time_limit_problems(target, part, survey)
    problems += limit_problems
    if problems:
        return _config_failed(problems, details)
    gaq = part.get("gaq", {})
    gaq_text = (
        f"on (secret {gaq.get('secret_bytes')} bytes, {gaq.get('cache_backend_type')})"
        if part.get("feature_flags", {}).get("GLOBAL_ASYNC_QUERIES")
        else "off"
    )
    workers = (
        f" (sent with each task; {len(survey.workers)} prefork worker(s) enforce it)"
        if survey and survey.workers
        else ""
    )
    metadata = str(part.get("metadata_uri"))
    reason = (
        f"imported in {part.get('import_seconds')}s; RESULTS_BACKEND {part['results_backend']}; GAQ {gaq_text}; "
        f"{SQLLAB_TASK} soft_time_limit {soft}s{workers}; metadata {metadata}"
    )
    expected_metadata = settings.metadata_uri()
    if _without_password(expected_metadata) != _without_password(metadata):
        return warned(
            reason + f"; but the settings name {expected_metadata}",
            "render the config again",
            (dx.CONFIG_BROKEN,),
            **details,
        )
    return passed(reason, **details)


def _backend_and_flag_problems(target: Target, part: dict[str, Any]) -> list[tuple[str, str]]:
    problems = []
    if part.get("results_backend") is None:
        problems.append(("RESULTS_BACKEND is None: async SQL Lab cannot store results", dx.RESULTS_BACKEND_MISSING))
    if not part["celery"].get("result_backend"):
        problems.append(("CELERY_CONFIG has no result_backend", dx.RESULTS_BACKEND_MISSING))
    flags = part.get("feature_flags", {})
    for flag, wanted in feature_flags(target.settings).items():
        if flags.get(flag) != wanted:
            problems.append((f"feature flag {flag} is {flags.get(flag)}, the settings say {wanted}", dx.CONFIG_BROKEN))
    gaq = part.get("gaq", {})
    if flags.get("GLOBAL_ASYNC_QUERIES"):
        if gaq.get("secret_bytes", 0) < 32 or gaq.get("secret_is_default"):
            default = " (the default)" if gaq.get("secret_is_default") else ""
            problems.append(
                (
                    f"GLOBAL_ASYNC_QUERIES_JWT_SECRET is {gaq.get('secret_bytes')} bytes{default}; "
                    "Superset needs >= 32",
                    dx.GAQ_SECRET,
                )
            )
        for key, kind in (
            ("GLOBAL_ASYNC_QUERIES_CACHE_BACKEND", gaq.get("cache_backend_type")),
            ("DATA_CACHE_CONFIG", part.get("data_cache_type")),
        ):
            if kind not in ("RedisCache", "redis"):
                problems.append((f"{key} is {kind}: GAQ results and events need Redis", dx.GAQ_BACKEND))
    return problems


def _time_limit_problems(
    target: Target, part: dict[str, Any], survey: WorkerSurvey | None
) -> tuple[int, list[tuple[str, str]]]:
    """The soft limit the config gives sql_lab.get_sql_results, and where it is not what the settings ask."""
    expected = target.settings.sql_lab.async_time_limit_seconds
    annotation = part["celery"].get("sqllab_annotation", {})
    soft = int(annotation.get("soft_time_limit", UPSTREAM_SOFT_LIMIT))
    problems = []
    if soft != expected:
        upstream = " (no task annotation: upstream's hard-coded 6 h)" if not annotation else ""
        problems.append(
            (
                f"{SQLLAB_TASK} gets soft_time_limit {soft}s from the config, not "
                f"sql_lab.async_time_limit_seconds ({expected}s){upstream}",
                dx.TIME_LIMIT,
            )
        )
    # Celery puts the sender's limits in each message ("timelimit") and the worker applies them over its
    # own task's, so the web's config decides the limit; the worker only has to be able to enforce it.
    for w in survey.workers if survey is not None else ():
        if w.pool and "prefork" not in w.pool:
            problems.append((f"worker {w.name} runs the {w.pool} pool: no time limit is enforced", dx.TIME_LIMIT))
    return soft, problems


def _without_password(uri: str) -> str:
    """A URI without its password (SQLAlchemy shows it as ***), for comparing settings and config."""
    return re.sub(r"(//[^:/@]*):[^@/]*@", r"\1@", uri)


def _config_failed(problems: list[tuple[str, str]], details: dict[str, Any]) -> Outcome:
    modes = tuple(dict.fromkeys(m for _, m in problems))
    remedy = {
        dx.GAQ_SECRET: "write >= 32 random bytes to global_async_queries.jwt_secret_file "
        "(openssl rand -base64 48 > FILE; chmod 600), restart web and worker",
        dx.RESULTS_BACKEND_MISSING: "render the config with `superset-async render` (sets RESULTS_BACKEND) and "
        "remove extra_config that unsets it",
        dx.TIME_LIMIT: "render the config with `superset-async render` (task_annotations), keep the prefork pool, "
        "restart web and worker",
    }.get(modes[0], "fix what is named, render the config again and restart web and worker")
    return failed("; ".join(text for text, _ in problems), remedy, modes, **details)
