"""Starting settings for the three shapes of deployment, with comments a person can follow.

`starting_settings(profile, secrets_dir, state_dir)` is what `superset-async init-settings` writes and
what `examples/settings/*.json` hold (a test keeps them equal). JSON has no comments: entries whose
key starts with "//" explain the object they sit in and are ignored by the loader
(loading.without_comments).
"""

from __future__ import annotations

from typing import Any, Literal

Profile = Literal["single", "production", "scale-out"]
PROFILES: tuple[Profile, ...] = ("single", "production", "scale-out")

_CLICKHOUSE = {
    "//": "Each database is registered in Superset by bootstrap; allow_run_async sends SQL Lab's queries "
    "to the Celery workers. The URI has no password: it comes from password_file.",
    "name": "ClickHouse",
    "uri": "clickhousedb://superset@127.0.0.1:8123/default",
    "allow_run_async": True,
    "expose_in_sqllab": True,
}


def starting_settings(profile: Profile, secrets_dir: str, state_dir: str) -> dict[str, Any]:
    """The settings of `profile`, its secret files under `secrets_dir`, its state under `state_dir`."""

    def secret(name: str) -> str:
        return f"{secrets_dir}/{name}"

    common: dict[str, Any] = {
        "state_dir": state_dir,
        "secret_key_file": secret("secret_key"),
        "global_async_queries": {
            "//": "Charts and dashboards load through Celery and Redis; the JWT secret needs 32+ bytes.",
            "jwt_secret_file": secret("gaq_jwt_secret"),
        },
        "admin": {
            "//": "bootstrap creates this user once; its password is never changed afterwards.",
            "username": "admin",
            "password_file": secret("admin_password"),
        },
        "databases": [{**_CLICKHOUSE, "password_file": secret("clickhouse_password")}],
    }
    if profile == "single":
        return {
            "//": "One host: SQLite metadata in state_dir, a local Redis (password, and its unix socket), "
            "web, worker and beat. Run it with: superset-async up --settings <this file>",
            **common,
            "redis": {
                "//": "superset-async up starts this Redis itself (loopback and the socket only).",
                "host": "127.0.0.1",
                "port": 6380,
                "unix_socket": f"{state_dir}/run/redis.sock",
                "password_file": secret("redis_password"),
            },
            "web": {"bind": "127.0.0.1", "port": 8088},
            "worker": {"concurrency": 4},
        }
    if profile == "production":
        return {
            "//": "One production host: PostgreSQL metadata, Redis with a password, the web on loopback behind "
            "a TLS reverse proxy, Alerts & Reports by e-mail. On NixOS: examples/nixos/production.nix.",
            **common,
            "metadata_db": {
                "//": "SQLite cannot take many concurrent writers; PostgreSQL can.",
                "uri": "postgresql://superset@127.0.0.1:5432/superset",
                "password_file": secret("metadata_db_password"),
            },
            "redis": {"host": "127.0.0.1", "port": 6379, "password_file": secret("redis_password")},
            "web": {
                "//": "public_url: the address of the TLS proxy in front; it marks the session and GAQ cookies "
                "Secure and trusts that one proxy's X-Forwarded-* headers (client address, https, HSTS).",
                "bind": "127.0.0.1",
                "port": 8088,
                "public_url": "https://superset.example.org/",
                "workers": 4,
                "threads": 4,
            },
            "worker": {"concurrency": 4, "max_tasks_per_child": 200},
            "reports": {
                "//": "Alerts & Reports (docs/reports.md): beat schedules them every minute, the worker takes the "
                "screenshots with a headless Chromium (Debian: chromium, chromium-driver) and mails them; links in "
                "the mails point at web.public_url.",
                "enabled": True,
                "smtp": {
                    "//": "Your mail server's submission port. init-settings writes a random placeholder into "
                    "password_file: replace it with the mail account's password.",
                    "host": "smtp.example.org",
                    "port": 587,
                    "starttls": True,
                    "user": "superset@example.org",
                    "password_file": secret("smtp_password"),
                    "mail_from": "superset@example.org",
                },
            },
        }
    return {
        "//": "Scale-out: the same file on every host (same secrets); the web host runs init, web and beat, "
        "the worker hosts only the Celery worker. Redis and PostgreSQL run on their own hosts.",
        **common,
        "metadata_db": {
            "uri": "postgresql://superset@db.internal:5432/superset",
            "password_file": secret("metadata_db_password"),
        },
        "redis": {
            "//": "Shared by every host: the broker web and workers meet on.",
            "host": "redis.internal",
            "port": 6379,
            "password_file": secret("redis_password"),
        },
        "web": {"bind": "0.0.0.0", "port": 8088, "workers": 4},  # noqa: S104 - the web host serves the LAN
        "worker": {"concurrency": 4},
        "beat": {
            "//": "Exactly one beat per stack, or every report is sent twice: keep it on the web host only.",
            "enabled": True,
        },
    }
