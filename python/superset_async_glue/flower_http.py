"""Where Flower answers and how to ask it: the runner waits on it, verify and the tests read it.

Flower 2.2 serves `/healthcheck` and `/metrics` to anyone (no authentication, even with basic auth
on); its UI and `/api/*` need basic auth when flower.password_file is set.
"""

from __future__ import annotations

import re

import requests

from .secret_io import read_secret
from .settings import Settings
from .settings_monitoring import FLOWER_PASSWORD_CREDENTIAL

# flower_worker_online{worker="celery@host"} 1.0
_ONLINE = re.compile(r'^flower_worker_online\{worker="([^"]+)"\} ([0-9.eE+-]+)$', re.MULTILINE)


def flower_host(settings: Settings) -> str:
    """The address a local client reaches Flower on: a wildcard bind means loopback."""
    bind = settings.flower.bind
    return "127.0.0.1" if bind in ("0.0.0.0", "localhost") else ("::1" if bind == "::" else bind)  # noqa: S104


def flower_url(settings: Settings) -> str:
    host = flower_host(settings)
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.flower.port}/"


def flower_auth(settings: Settings) -> tuple[str, str] | None:
    """(user, password) for Flower's basic auth, read from its file, or None when Flower has none."""
    f = settings.flower
    if f.password_file is None:
        return None
    return (f.user, read_secret("flower.password_file", f.password_file, FLOWER_PASSWORD_CREDENTIAL))


def flower_healthy(settings: Settings, timeout: float = 1.0) -> bool:
    try:
        return requests.get(flower_url(settings) + "healthcheck", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def online_workers(metrics_text: str) -> list[str]:
    """Workers Flower's /metrics shows online (flower_worker_online 1)."""
    return sorted(name for name, value in _ONLINE.findall(metrics_text) if float(value) >= 1)
