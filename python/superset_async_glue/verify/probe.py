"""Run by the web's own interpreter (a subprocess): what the web's environment does with the config.

Standalone on purpose: it imports nothing from the glue, because the web's environment may not have
it (`--web-python`). It imports the config, then reads one JSON request on stdin (it carries the broker
URL with credentials, so never on the command line), and writes JSON lines to stdout:

1. {"part": "config"}: SUPERSET_CONFIG_PATH imported the way superset/config.py imports it (a module
   from a file, with the web's environment variables), and how long that took; never its values.
   Superset itself is not imported: that took 3.5 s and its defaults are known (verify/target.py).
2. {"part": "publish"}: versions of kombu, redis-py and Celery, and a real publish and consume through
   kombu on the broker (what SQL Lab's `get_sql_results.delay()` does first; it fails here with
   kombu's VersionMismatch when kombu >= 5.7 meets redis-py < 6.1).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
from typing import Any

_PASSWORD = re.compile(r"(://[^:/@\s]*):[^@/\s]+@")


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


def _config() -> dict[str, Any]:
    import importlib.util  # noqa: PLC0415

    started = time.monotonic()
    spec = importlib.util.spec_from_file_location("superset_config", os.environ["SUPERSET_CONFIG_PATH"])
    if spec is None or spec.loader is None:
        raise ImportError(f"{os.environ['SUPERSET_CONFIG_PATH']} is not a Python module")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return {"import_seconds": round(time.monotonic() - started, 3)}


def main() -> None:
    # The config may print (Superset's prints "Loaded your LOCAL configuration"): stdout is for our JSON.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)

    def emit(part: str, body: dict[str, Any]) -> None:
        out.write(json.dumps({"part": part, **body}, default=str) + "\n")
        out.flush()

    # One thread, one import at a time: the config (celery, redis) and the publish (kombu) import
    # overlapping packages, and two threads importing them at once can see a module half-initialised
    # ("cannot import name ... most likely due to a circular import"). The config goes first: verify
    # sends the request only after its own import of the config, so the wait costs nothing.
    try:
        emit("config", {"ok": True, **_config()})
    except BaseException as err:  # a config that raises is the finding, whatever it raises
        emit("config", {"ok": False, "error": _error(err)})
    text = sys.stdin.read()
    if text:  # empty: no broker to publish to (the config did not import in verify)
        emit("publish", {"versions": _versions(), "publish": _publish(json.loads(text)["broker"])})


if __name__ == "__main__":
    main()
