"""Gather for the optional Flower check: Flower's /healthcheck, /metrics and, with its password, /api/workers."""

from __future__ import annotations

import time

import requests

from ..flower_http import flower_auth, flower_url, online_workers
from ..settings import Settings
from .facts import FlowerFacts, WorkerSurvey

TIMEOUT = 5.0  # seconds per request; /api/workers?refresh asks the workers (Celery inspect, 1 s)
# Flower shows a worker online from its first heartbeat event (Celery sends one every 2 s), so a
# Flower started a moment ago may not show a worker that answers on the broker yet: look again.
HEARTBEAT_WAIT = 3.0


def _status(response: requests.Response) -> str:
    return str(response.status_code)


def flower_facts(settings: Settings, survey: WorkerSurvey) -> FlowerFacts:
    url = flower_url(settings)
    pinged = tuple(sorted(w.name for w in survey.workers))
    try:
        health = _status(requests.get(url + "healthcheck", timeout=TIMEOUT))
    except requests.RequestException as err:
        return FlowerFacts(url, f"unreachable ({type(err).__name__})", (), "not asked", pinged)
    try:
        deadline = time.monotonic() + HEARTBEAT_WAIT
        while True:
            metrics = requests.get(url + "metrics", timeout=TIMEOUT)
            online = tuple(online_workers(metrics.text)) if metrics.status_code == 200 else ()
            if (online and set(pinged) <= set(online)) or time.monotonic() >= deadline:
                break
            time.sleep(0.25)
        auth = flower_auth(settings)
        if auth is None:
            api = "not asked (no flower.password_file)"
        else:
            api = _status(requests.get(url + "api/workers", params={"refresh": "1"}, auth=auth, timeout=TIMEOUT))
    except requests.RequestException as err:
        return FlowerFacts(url, health, (), f"unreachable ({type(err).__name__})", pinged)
    return FlowerFacts(url, health, online, api, pinged)
