"""What the broker holds for a Celery queue, read through kombu's Redis transport.

kombu keeps a queue as one Redis list per priority step (`celery`, then `celery\\x06\\x163`, ...) and
the messages it delivered to a worker, until they are acknowledged, in one hash (`unacked`). Both the
web's pending watchdog (sqllab_watchdog.py) and Flower's queue-length metric (flower_metrics.py) read
them; the key names are kombu's own, asked from its channel, never spelled here.
"""

from __future__ import annotations

import json
from typing import Any

# A scrape or a sweep must never hang on a broker that is down: one short try, no retry loop.
BROKER_TIMEOUT_SECONDS = 2.0


def open_connection(app: Any) -> Any:
    """A read connection of the Celery `app` with short socket timeouts (Sentinel and TLS as configured)."""
    options = {
        **(app.conf.broker_transport_options or {}),
        "socket_timeout": BROKER_TIMEOUT_SECONDS,
        "socket_connect_timeout": BROKER_TIMEOUT_SECONDS,
    }
    return app.connection_for_read(connect_timeout=BROKER_TIMEOUT_SECONDS, transport_options=options)


def queue_keys(channel: Any, queue: str) -> list[str]:
    """The Redis lists holding `queue`'s waiting messages, one per priority step."""
    return [channel._q_for_pri(queue, pri) for pri in channel.priority_steps]


def waiting_messages(channel: Any, queue: str) -> int:
    """Messages waiting in `queue`, not yet delivered to any worker."""
    client = channel.client
    return sum(int(client.llen(key)) for key in queue_keys(channel, queue))


def waiting_payloads(channel: Any, queue: str) -> list[bytes]:
    """The raw messages waiting in `queue`."""
    client = channel.client
    return [p for key in queue_keys(channel, queue) for p in client.lrange(key, 0, -1)]


def unacknowledged_payloads(channel: Any) -> list[bytes]:
    """The raw messages delivered to workers and not yet acknowledged (reserved or running)."""
    # Each value is kombu's [message, exchange, routing_key].
    return [json.dumps(json.loads(v)[0]).encode() for v in channel.client.hvals(channel.unacked_key)]


def unacknowledged_count(channel: Any) -> int:
    return int(channel.client.hlen(channel.unacked_key))
