"""Gather for checks 6 and 7 in the web's own Python environment (probe.py run by the web's interpreter).

One subprocess serves both: it imports the config as Superset does (check 6), then publishes and
consumes a message through kombu on the broker (check 7). Verify starts it before every other check.
"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

from ..commands import role_environment
from ..settings import Settings
from .facts import WebEnvFacts
from .target import LoadedConfig

PROBE = Path(__file__).with_name("probe.py")
# Run probe.py by path without putting its directory (or the working directory) on sys.path: the
# glue's module names must not shadow the web environment's (or the standard library's).
_RUN_PROBE = (
    "import runpy, sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; "
    "runpy.run_path(sys.argv[1], run_name='__main__')"
)


class ProbeRun:
    """The probe subprocess, started at once, and the JSON parts it wrote (read once, when first asked)."""

    def __init__(self, settings: Settings, config_path: Path, python: str, how: str) -> None:
        self.python = python
        self.how = how
        self.request = ""  # empty: no broker to publish to (the config did not import)
        self.failure: str | None = None
        self._parts: dict[str, dict[str, Any]] | None = None
        self._lock = threading.Lock()
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
            self.failure = f"cannot run {python}: {err.strerror or err}"

    def send(self, view: LoadedConfig) -> None:
        """The broker to publish to; its URL holds credentials, so it goes through stdin only."""
        if view.error is None:
            options = view.broker_options
            broker = {
                "url": view.broker_url,
                "ssl": options["broker_use_ssl"],
                "transport_options": options["broker_transport_options"],
            }
            self.request = json.dumps({"broker": broker}, default=str)

    def part(self, name: str, timeout: float) -> dict[str, Any] | None:
        """One part of the probe's answer, None when it gave none (then `failure` says why)."""
        with self._lock:
            if self._parts is None:
                self._parts = self._communicate(timeout)
            return self._parts.get(name)

    def _communicate(self, timeout: float) -> dict[str, dict[str, Any]]:
        if self.process is None:
            return {}
        try:
            out, err = self.process.communicate(self.request, timeout=timeout)
            state = f"exit code {self.process.returncode}"
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
            state = f"no answer within {timeout:.0f}s"
        parts = {}
        for line in out.splitlines():
            try:
                part = json.loads(line)
            except ValueError:
                continue
            parts[str(part.get("part"))] = part
        tail = " | ".join(line for line in err.splitlines()[-6:] if line.strip())
        self.failure = f"the probe in {self.python} ended without an answer ({state}){': ' + tail if tail else ''}"
        return parts

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _base_env() -> dict[str, str]:
    import os  # noqa: PLC0415

    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "SSL_CERT_FILE")
    # NIX_*: a Nix Python environment's wrapper finds its site-packages through them.
    return {k: v for k, v in os.environ.items() if k in keep or k.startswith("NIX_")}


def web_env_facts(probe: ProbeRun, config_error: str | None) -> WebEnvFacts:
    """Check 7's facts: the probe's versions and kombu publish, or why it gave no answer."""
    if config_error is not None:
        return WebEnvFacts(probe.python, probe.how, config_error=config_error)
    part = probe.part("publish", timeout=30)
    if part is None:
        return WebEnvFacts(probe.python, probe.how, probe.failure or "the probe gave no answer")
    publish = part.get("publish", {})
    error = publish.get("error") or {}
    return WebEnvFacts(
        python=probe.python,
        how=probe.how,
        versions=part.get("versions", {}),
        publish_ok=bool(publish.get("ok")),
        publish_ms=publish.get("ms"),
        error_type=str(error.get("type", "")),
        error_message=str(error.get("message", "")),
    )


def web_import(probe: ProbeRun) -> tuple[str | None, float | None]:
    """The config's import in the web's interpreter: the error (None when it imported) and its seconds."""
    part = probe.part("config", timeout=30)
    if part is None:
        return probe.failure or "the probe gave no answer", None
    if not part.get("ok"):
        error = part.get("error", {})
        return f"{error.get('type')}: {error.get('message')}", None
    return None, part.get("import_seconds")
