"""Gather for the optional Flower check: Flower's /healthcheck, /metrics and, with its password, /api/workers."""

from __future__ import annotations

import requests

from ..flower_http import flower_auth, flower_url, online_workers
from ..settings import Settings
from .facts import FlowerFacts, WorkerSurvey

TIMEOUT = 5.0  # seconds per request; /api/workers?refresh asks the workers (Celery inspect, 1 s)


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
        metrics = requests.get(url + "metrics", timeout=TIMEOUT)
        online = tuple(online_workers(metrics.text)) if metrics.status_code == 200 else ()
        auth = flower_auth(settings)
        if auth is None:
            api = "not asked (no flower.password_file)"
        else:
            api = _status(requests.get(url + "api/workers", params={"refresh": "1"}, auth=auth, timeout=TIMEOUT))
    except requests.RequestException as err:
        return FlowerFacts(url, health, (), f"unreachable ({type(err).__name__})", pinged)
    return FlowerFacts(url, health, online, api, pinged)
