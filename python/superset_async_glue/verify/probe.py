"""Run by the web's own interpreter (a subprocess): what the web's environment does with the config.

Standalone on purpose: it imports nothing from the glue, because the web's environment may not have
it (`--web-python`). It starts importing Superset's config at once, reads one JSON request on stdin (it
carries Redis URLs with credentials, so never on the command line) and writes JSON lines to stdout:

1. {"part": "publish"}: versions of kombu, redis-py and Celery, a PING through each Redis client the
   config builds, and a real publish and consume through kombu on the broker (what SQL Lab's
   `get_sql_results.delay()` does first; it fails here with kombu's VersionMismatch when kombu >= 5.7
   meets redis-py < 6.1).
2. {"part": "config"}: `superset.config` imported the way Superset imports it (SUPERSET_CONFIG_PATH),
   reduced to facts: types, flags, lengths, sanitised URLs. Never a secret.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
import uuid
from typing import Any

_PASSWORD = re.compile(r"(://[^:/@\s]*):[^@/\s]+@")
SQLLAB_TASK = "sql_lab.get_sql_results"
GAQ_DEFAULT_SECRET = "test-secret-change-me"  # noqa: S105 - superset/config.py's public placeholder


def _sanitise(value: Any) -> str | None:
    return None if value is None else _PASSWORD.sub(r"\1:********@", str(value))


def _error(err: BaseException) -> dict[str, str]:
    return {"type": f"{type(err).__module__}.{type(err).__name__}", "message": _sanitise(err) or ""}


def _versions() -> dict[str, str | None]:
    from importlib import metadata  # noqa: PLC0415

    out: dict[str, str | None] = {"python": sys.version.split()[0], "executable": sys.executable}
    for dist in ("kombu", "redis", "celery", "apache-superset"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _redis_client(endpoint: dict[str, Any]) -> Any:
    import redis  # noqa: PLC0415

    timeouts: dict[str, Any] = {"socket_connect_timeout": 2.0, "socket_timeout": 2.0}
    if endpoint["kind"] == "redis_url":
        return redis.Redis.from_url(endpoint["url"], **endpoint.get("kwargs", {}), **timeouts)
    return redis.Redis(**endpoint.get("kwargs", {}), **timeouts)


def _ping(endpoint: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    out: dict[str, Any] = {"role": endpoint["role"], "client": endpoint["client"]}
    try:
        client = _redis_client(endpoint)
        try:
            client.ping()
        finally:
            client.close()
        out["ok"] = True
    except Exception as err:
        out |= {"ok": False, "error": _error(err)}
    out["ms"] = round((time.monotonic() - started) * 1000, 1)
    return out


def _publish(broker: dict[str, Any]) -> dict[str, Any]:
    """Publish one message through kombu on the broker and consume it again, on a private queue."""
    started = time.monotonic()
    try:
        import kombu  # noqa: PLC0415

        name = f"superset-async-verify.{uuid.uuid4().hex[:12]}"
        payload = {"superset_async_verify": name}
        queue = kombu.Queue(name, kombu.Exchange(name, type="direct"), routing_key=name)
        with kombu.Connection(
            broker["url"],
            ssl=broker.get("ssl") or False,
            transport_options=broker.get("transport_options") or {},
            connect_timeout=2,
        ) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=3)
            try:
                with connection.SimpleQueue(queue) as simple:
                    simple.put(payload, retry=False)
                    message = simple.get(block=True, timeout=3)
                    message.ack()
                    if message.payload != payload:
                        raise RuntimeError(f"consumed {message.payload!r}, expected {payload!r}")
            finally:
                channel = connection.channel()
                try:
                    bound = queue(channel)
                    bound.delete()
                    bound.exchange.delete()
                finally:
                    channel.close()
    except Exception as err:
        return {"ok": False, "error": _error(err), "ms": round((time.monotonic() - started) * 1000, 1)}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


def _annotation(annotations: Any) -> dict[str, Any]:
    """What Celery's task annotations set on sql_lab.get_sql_results (Celery's own resolution)."""
    from celery.app.annotations import prepare, resolve_all  # noqa: PLC0415

    class Task:
        name = SQLLAB_TASK

    merged: dict[str, Any] = {}
    for found in resolve_all(prepare(annotations), Task):
        merged.update({k: v for k, v in dict(found).items() if isinstance(v, int | float | str | bool)})
    return merged


def _cache_type(config: Any) -> str:
    return str((config or {}).get("CACHE_TYPE", "NullCache")).rsplit(".", 1)[-1]


def _config() -> dict[str, Any]:
    started = time.monotonic()
    import superset.config as c  # noqa: PLC0415 - the slow part: Superset imports its whole app here

    imported = time.monotonic() - started
    celery = getattr(c, "CELERY_CONFIG", None)

    def get(key: str) -> Any:
        return getattr(celery, key, None)

    flags = {**dict(getattr(c, "DEFAULT_FEATURE_FLAGS", {})), **dict(getattr(c, "FEATURE_FLAGS", {}))}
    secret = getattr(c, "GLOBAL_ASYNC_QUERIES_JWT_SECRET", None)
    try:
        from sqlalchemy.engine import make_url  # noqa: PLC0415

        metadata = make_url(c.SQLALCHEMY_DATABASE_URI).render_as_string(hide_password=True)
    except Exception:
        metadata = _sanitise(getattr(c, "SQLALCHEMY_DATABASE_URI", None))
    results = getattr(c, "RESULTS_BACKEND", None)
    return {
        "import_seconds": round(imported, 3),
        "results_backend": None if results is None else type(results).__name__,
        "feature_flags": {k: v for k, v in flags.items() if isinstance(v, bool)},
        "gaq": {
            "secret_bytes": len(str(secret).encode()) if secret is not None else 0,
            "secret_is_default": secret == GAQ_DEFAULT_SECRET,
            "transport": getattr(c, "GLOBAL_ASYNC_QUERIES_TRANSPORT", None),
            "cache_backend_type": _cache_type(getattr(c, "GLOBAL_ASYNC_QUERIES_CACHE_BACKEND", None)),
        },
        "cache_type": _cache_type(getattr(c, "CACHE_CONFIG", None)),
        "data_cache_type": _cache_type(getattr(c, "DATA_CACHE_CONFIG", None)),
        "celery": {
            "broker_url": _sanitise(get("broker_url")),
            "result_backend": _sanitise(get("result_backend")),
            "sqllab_annotation": _annotation(get("task_annotations")),
            "beat_tasks": {str(k): str(v.get("task")) for k, v in dict(get("beat_schedule") or {}).items()},
            "imports": [str(i) for i in (get("imports") or ())],
        },
        "metadata_uri": metadata,
        "sqllab_async_time_limit_sec": getattr(c, "SQLLAB_ASYNC_TIME_LIMIT_SEC", None),
        "sqllab_timeout": getattr(c, "SQLLAB_TIMEOUT", None),
    }


def main() -> None:
    # Superset prints "Loaded your LOCAL configuration" on stdout: keep stdout for our JSON lines only.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    lock = threading.Lock()

    def emit(part: str, body: dict[str, Any]) -> None:
        with lock:
            out.write(json.dumps({"part": part, **body}, default=str) + "\n")
            out.flush()

    def config_part() -> None:
        try:
            emit("config", {"ok": True, **_config()})
        except BaseException as err:  # a config that raises is the finding, whatever it raises
            emit("config", {"ok": False, "error": _error(err)})

    # The import of superset.config (seconds) starts at once; the request arrives while it runs.
    importer = threading.Thread(target=config_part, daemon=True)
    importer.start()
    request = json.loads(sys.stdin.read())
    emit(
        "publish",
        {
            "versions": _versions(),
            "pings": [_ping(e) for e in request.get("endpoints", [])],
            "publish": _publish(request["broker"]),
        },
    )
    importer.join()


if __name__ == "__main__":
    main()
