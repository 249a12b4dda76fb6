"""A private redis-server for the stack: own data dir, AOF on, loopback TCP and/or a unix socket.

The password (redis.password_file) is required: Superset's results backend and caches keep pickles
in Redis, so whoever can write to it runs code as Superset, and this Redis always listens on
loopback TCP (the runner's probes and GAQ use it), which every local user can reach. It goes only
into redis.conf, a 0600 file in the private run dir; it never appears on a command line, where any
local user could read it from /proc.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..redis_urls import sentinel_kwargs, sentinels
from ..secret_io import read_secret, write_private
from ..settings import Settings

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class RedisPlan:
    """What the runner starts: redis-server with this config file."""

    argv: tuple[str, ...]
    config_file: Path
    data_dir: Path
    host: str
    port: int
    unix_socket: str | None


def find_redis_server() -> str:
    found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/sbin:/usr/bin")
    if not found:
        raise UsageError(
            "redis-server not found on PATH; install it: `sudo apt-get install -y redis-server` (as root without "
            "sudo, or scripts/setup as root)"
        )
    return found


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def plan_redis(settings: Settings, run_dir: Path, data_dir: Path) -> RedisPlan:
    """Write redis.conf (0600) for the settings' Redis and return how to start it."""
    r = settings.redis
    if r.host not in LOOPBACK:
        raise UsageError(
            f"settings redis.host is {r.host!r}; the runner starts Redis on loopback only (127.0.0.1, localhost or ::1)"
        )
    if r.tls.enabled:
        raise UsageError("settings redis.tls.enabled is true; the local runner's Redis speaks plain TCP only")
    if r.password_file is None:
        raise UsageError(
            "settings redis.password_file is not set; the runner's Redis listens on loopback TCP, which every local "
            "user can reach, and anyone who can write to it runs code as Superset (it holds pickles): write a random "
            "password to a file (e.g. openssl rand -base64 32 > secrets/redis_password; chmod 600) and set "
            "redis.password_file to it"
        )
    password = read_secret("redis.password_file", r.password_file)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in password):
        raise UsageError(
            f"redis.password_file: {r.password_file} holds a control character (a line break inside the password?); "
            "it would end the line of redis.conf it is written to: write a password of printable characters"
        )
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    host = "127.0.0.1" if r.host == "localhost" else r.host
    lines = [
        "# Written by superset-async up; regenerated at every start.",
        f"bind {host}",
        f"port {r.port}",
        "protected-mode yes",
        "daemonize no",
        f"dir {_quote(str(data_dir))}",
        'logfile ""',
        "appendonly yes",
        # Every write reaches the disk before Redis answers it, so neither a killed Redis nor a host
        # crash loses an acknowledged result (everysec may lose up to 2 s); docs/runner.md has the cost.
        "appendfsync always",
        "save 900 1 300 100",
        "databases 16",
    ]
    if r.unix_socket:
        Path(r.unix_socket).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lines += [f"unixsocket {_quote(r.unix_socket)}", "unixsocketperm 700"]
    if r.username:  # a token (settings.py): it cannot end the line or add a directive
        lines.append(f"user {r.username} on {_quote('>' + password)} ~* &* +@all")
        lines.append("user default off")
    else:
        lines.append(f"requirepass {_quote(password)}")
    config = run_dir / "redis.conf"
    write_private(config, "\n".join(lines) + "\n")
    return RedisPlan((find_redis_server(), str(config)), config, data_dir, host, r.port, r.unix_socket)


def ping(settings: Settings, timeout: float = 1.0) -> bool:
    """True when the stack's Redis answers PING with the settings' credentials."""
    import redis  # noqa: PLC0415 - only the runner needs it

    r = settings.redis
    password = read_secret("redis.password_file", r.password_file) if r.password_file else None
    if r.sentinel is not None:  # an external Redis: whichever node the Sentinels name master
        return _sentinel_master_ping(settings, password, timeout)
    client = redis.Redis(
        host="127.0.0.1" if r.host == "localhost" else r.host,
        port=r.port,
        username=r.username,
        password=password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _sentinel_master_ping(settings: Settings, password: str | None, timeout: float) -> bool:
    import redis.sentinel  # noqa: PLC0415 - only the runner needs it

    sentinel = settings.redis.sentinel
    assert sentinel is not None  # noqa: S101 - called only with Sentinel
    secret = read_secret("redis.sentinel.password_file", sentinel.password_file) if sentinel.password_file else None
    # redis-py's sentinel module has no type hints.
    finder = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        sentinels(settings.redis), sentinel_kwargs=sentinel_kwargs(secret, timeout), password=password
    )
    client = finder.master_for(  # type: ignore[no-untyped-call]
        sentinel.master_name, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()
