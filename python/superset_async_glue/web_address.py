"""Where the stack's web answers, from the settings: the runner waits on it, verify calls it."""

from __future__ import annotations

from .settings import Settings


def web_host(settings: Settings) -> str:
    """The host a local client reaches the web on: a wildcard bind means loopback."""
    bind = settings.web.bind
    host = "127.0.0.1" if bind in ("0.0.0.0", "localhost") else ("::1" if bind == "::" else bind)  # noqa: S104
    return f"[{host}]" if ":" in host else host


def web_url(settings: Settings) -> str:
    return f"http://{web_host(settings)}:{settings.web.port}/"
