"""Gather for checks 6 and 7 in the web's own Python environment (probe.py run by the web's interpreter).

One subprocess serves both: it imports the config as Superset does (check 6) while it publishes and
consumes a message through kombu on the broker (check 7). Verify starts it before every other check.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections import deque
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
    """The probe subprocess and the JSON parts it has written so far."""

    def __init__(self, settings: Settings, config_path: Path, python: str, how: str) -> None:
        """Start the probe at once (its import of the config runs meanwhile); `send` gives it the broker later."""
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

    def send(self, view: LoadedConfig) -> None:
        """The broker to publish to (its URL holds credentials: through stdin only)."""
        if self.process is None or self.process.stdin is None:
            return
        if view.error is not None:  # no config, no broker: the probe only imports and reports versions
            self.process.stdin.close()
            return
        request = {
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


def web_env_facts(probe: ProbeRun, config_error: str | None) -> WebEnvFacts:
    """Check 7's facts: the probe's versions and kombu publish, or why it gave no answer."""
    if config_error is not None:
        return WebEnvFacts(probe.python, probe.how, config_error=config_error)
    part = probe.part("publish", timeout=30)
    if part is None:
        return WebEnvFacts(probe.python, probe.how, probe.failure())
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
        return probe.failure(), None
    if not part.get("ok"):
        error = part.get("error", {})
        return f"{error.get('type')}: {error.get('message')}", None
    return None, part.get("import_seconds")
