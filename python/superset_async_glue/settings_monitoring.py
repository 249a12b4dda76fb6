"""The `flower` and `metrics` sections of the settings: Celery monitoring and Superset's StatsD stats.

Kept apart from settings.py, which imports `Flower` and `Metrics` as fields. Flower 2.2 serves the
web UI, its REST API and a Prometheus `/metrics` (docs/metrics.md says what it counts and what it lacks).
"""

from __future__ import annotations

import ipaddress

from pydantic import Field, model_validator

from .settings_reports import Host, SecretFile, _Model

FLOWER_PASSWORD_CREDENTIAL = "flower_password"  # noqa: S105 - a credential name, not a password


def is_loopback(host: str) -> bool:
    """True for localhost and addresses in 127.0.0.0/8 or ::1: only this machine reaches them."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


class Flower(_Model):
    """Flower: Celery's monitoring UI, REST API and Prometheus /metrics."""

    enabled: bool = Field(False, description="Run Flower with this stack (a runner role, a NixOS unit).")
    bind: Host = Field(
        "127.0.0.1",
        description="Flower's listen address (--address). Beyond loopback, password_file is required.",
    )
    port: int = Field(5555, ge=1, le=65535, description="Flower's port (--port).")
    user: str = Field(
        "flower", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="The basic-auth user name (with password_file)."
    )
    password_file: SecretFile | None = Field(
        None,
        description="File holding the basic-auth password of the UI and the API (read when Flower starts, from "
        "$CREDENTIALS_DIRECTORY/flower_password first). Flower 2.2 serves /metrics without authentication.",
    )

    @model_validator(mode="after")
    def _auth_beyond_loopback(self) -> Flower:
        if self.enabled and self.password_file is None and not is_loopback(self.bind):
            from .settings import LocatedValueError  # noqa: PLC0415 - settings.py imports this module

            raise LocatedValueError(
                "password_file",
                f"required when flower.bind ({self.bind}) is not a loopback address: Flower's UI can revoke "
                "and rate-limit tasks; write a password to a file (e.g. openssl rand -base64 24 > "
                "/run/keys/flower) and set flower.password_file, or bind to 127.0.0.1",
            )
        return self


class Metrics(_Model):
    """Superset's own counters and timers (STATS_LOGGER) sent to a StatsD server over UDP."""

    statsd_host: Host | None = Field(
        None,
        description="STATS_LOGGER = StatsdStatsLogger(host, port, prefix) when set (e.g. 127.0.0.1, where a "
        "statsd_exporter listens); unset: Superset's DummyStatsLogger.",
    )
    statsd_port: int = Field(8125, ge=1, le=65535, description="The StatsD server's UDP port.")
    statsd_prefix: str = Field(
        "superset", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Prefix of every metric name Superset sends."
    )
