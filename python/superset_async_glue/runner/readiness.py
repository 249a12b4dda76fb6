"""Readiness probes: each answers quickly (about a second at most) so callers can poll them."""

from __future__ import annotations

import socket

import requests

from ..errors import UsageError
from ..redis_urls import sentinel_kwargs, sentinel_role_urls, tcp_address, with_auth
from ..secret_io import read_secret
from ..settings import Settings
from ..web_address import web_url


def broker_tcp_url(settings: Settings) -> str:
    """The broker's Redis DB over loopback TCP, with credentials (for the runner's own probes only)."""
    r = settings.redis
    password = read_secret("redis.password_file", r.password_file) if r.password_file else None
    address = tcp_address(r, "127.0.0.1" if r.host == "localhost" else r.host)
    return with_auth(f"redis://{address}/{r.dbs.broker}", r.username, password)


def worker_ping(settings: Settings, timeout: float = 1.0, limit: int | None = None) -> list[str]:
    """Names of the Celery workers on the stack's broker that answer a ping.

    A bare Celery app on the same broker, using Celery's own control API: this answers in well
    under a second, where `celery inspect ping` through Superset's app takes about 6 s. Celery
    collects replies for the whole `timeout`; with `limit` it returns as soon as that many answered
    (the runner's readiness wait: one worker is enough, and a second of waiting is a second of start).
    """
    from celery import Celery  # noqa: PLC0415 - only the runner's probes need it

    app = Celery("superset-async-probe", broker=broker_tcp_url(settings))
    if (sentinel := settings.redis.sentinel) is not None:
        r = settings.redis
        password = read_secret("redis.password_file", r.password_file) if r.password_file else None
        urls = [with_auth(url, None, password) for url in sentinel_role_urls(r, r.dbs.broker)]
        secret = read_secret("redis.sentinel.password_file", sentinel.password_file) if sentinel.password_file else None
        app.conf.broker_url = ";".join(urls)
        app.conf.broker_transport_options = {
            "master_name": sentinel.master_name,
            "sentinel_kwargs": sentinel_kwargs(secret, timeout),
        }
    try:
        replies = app.control.ping(timeout=timeout, limit=limit) or []
    except Exception:
        return []
    finally:
        app.close()
    return sorted(name for reply in replies for name in reply)


def web_health(settings: Settings, timeout: float = 1.0) -> bool:
    try:
        return requests.get(web_url(settings) + "health", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def check_port_free(port: int, setting: str, host: str = "127.0.0.1") -> None:
    """Fail with the setting's name when something already listens on `port`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers themselves do
        try:
            sock.bind((host, port))
        except OSError as err:
            raise UsageError(
                f"port {port} ({setting}) on {host} is already in use ({err.strerror}); see what holds it with "
                f"`ss -ltnp 'sport = :{port}'`, stop it, or set another port in {setting}"
            ) from err
