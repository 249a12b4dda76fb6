"""What makes a start shorter (docs/performance.md), checked on the shared stack: the worker skips
Celery's mingle (a second of waiting for other workers' revoked ids at every start), and the
runner's readiness ping returns at the first answer instead of collecting answers for its timeout,
and a ping lost because the worker was not listening yet costs a short timeout, not a second.
"""

from __future__ import annotations

import itertools
import time

from fixtures.stack import Stack
from superset_async_glue.loading import load_settings
from superset_async_glue.runner.readiness import escalating_ping_timeouts, worker_ping


def test_the_worker_starts_without_mingle(stack: Stack) -> None:
    argv = stack.stack_json()["processes"]["worker"]["argv"]
    assert "--without-mingle" in argv
    log = (stack.state_dir / "logs" / "worker.log").read_text(errors="replace")
    assert "ready." in log
    assert "mingle: searching for neighbors" not in log


def test_the_readiness_ping_returns_at_the_first_answer(stack: Stack) -> None:
    settings = load_settings(stack.settings_path)
    started = time.monotonic()
    names = worker_ping(settings, timeout=3.0, limit=1)
    seconds = time.monotonic() - started
    assert len(names) == 1
    # Without the limit, Celery collects replies for the whole 3 s timeout.
    assert seconds < 1.5, f"worker_ping(limit=1) took {seconds:.2f}s"


def test_readiness_pings_start_short_and_lengthen_while_unanswered() -> None:
    timeouts = list(itertools.islice(escalating_ping_timeouts(), 25))
    assert timeouts[0] == 0.3  # a ping lost before the worker listens costs 0.3 s, not the old 1 s
    assert timeouts == sorted(timeouts)
    assert timeouts[-1] == 2.0  # on a loaded host a slow answer is still heard, after longer waits than before
