"""Queue depth in Flower's Prometheus /metrics (Flower 2.2 exports task events and workers, not the queue).

The rendered flowerconfig.py calls `register()` when Flower starts: a prometheus_client collector
on the default registry, which Flower's /metrics serves. Each scrape asks the broker through the
Celery app Flower runs (the same CELERY_CONFIG: Sentinel, TLS and password as the workers use):

- `superset_async_celery_queue_length{queue}`: messages waiting in the queue, taken by no worker yet: the
  default queue and each SQL Lab lane's (sql_lab.lanes, `sql_lab_lane_NAME`);
- `superset_async_celery_unacknowledged`: messages (of every queue) delivered to a worker and not yet
  acknowledged (prefetched, or running: task_acks_late acknowledges a task when it ends);
- `superset_async_celery_broker_up`: 1 when the broker answered this scrape, else 0 (and no depth).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from .broker_queue import open_connection, unacknowledged_count, waiting_messages
from .sql_lab_lanes import configured_lane_queues

log = logging.getLogger(__name__)


class QueueDepthCollector:
    """A prometheus_client custom collector; the broker is asked at scrape time only."""

    def describe(self) -> list[Any]:
        # Without describe(), registering would call collect(), and so reach the broker, at Flower's start.
        return []

    def collect(self) -> Iterator[Any]:
        from celery import current_app  # noqa: PLC0415 - Flower's own app, once Flower runs
        from prometheus_client.core import GaugeMetricFamily  # noqa: PLC0415

        up = GaugeMetricFamily("superset_async_celery_broker_up", "1 when the Celery broker answered this scrape")
        queues = [current_app.conf.task_default_queue, *configured_lane_queues(current_app.conf)]
        try:
            with open_connection(current_app) as connection:
                channel = connection.default_channel
                waiting = {queue: waiting_messages(channel, queue) for queue in queues}
                delivered = unacknowledged_count(channel)
        except Exception as err:  # a scrape reports the broker down; it never fails Flower's /metrics
            log.warning("queue depth: cannot read the broker: %s", type(err).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        length = GaugeMetricFamily(
            "superset_async_celery_queue_length", "Messages waiting in the broker's queue", labels=["queue"]
        )
        for queue, count in waiting.items():
            length.add_metric([queue], count)
        yield length
        unacked = GaugeMetricFamily(
            "superset_async_celery_unacknowledged",
            "Messages delivered to a worker and not yet acknowledged (prefetched or running), all queues",
        )
        unacked.add_metric([], delivered)
        yield unacked


def register() -> None:
    """Add the collector to prometheus_client's default registry, once per process."""
    from prometheus_client import REGISTRY  # noqa: PLC0415

    global _registered  # noqa: PLW0603 - flowerconfig.py may be read more than once
    if not _registered:
        REGISTRY.register(QueueDepthCollector())
        _registered = True


_registered = False
