"""What makes a start shorter (docs/performance.md), checked on the shared stack: the worker skips
Celery's mingle (a second of waiting for other workers' revoked ids at every start), and the
runner's readiness ping returns at the first answer instead of collecting answers for its timeout,
and the runner learns that the worker is ready from the worker itself (READY=1 on a notify socket,
sd_notify.py) the moment it is, where a ping sent before the worker listened was lost; the worker's
main process and the web's master import what a first query needs before they fork (preload.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from fixtures.stack import Stack
from superset_async_glue.loading import load_settings
from superset_async_glue.runner.readiness import worker_ping
from superset_async_glue.sd_notify import NotifyListener, notify


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


def test_the_runner_learned_the_workers_readiness_from_its_notify(stack: Stack) -> None:
    said = (stack.state_dir / "logs" / "supervisor.log").read_text(errors="replace")
    assert "worker: ready (READY=1 on " in said
    # The socket is closed once the stack is ready: a restarted worker's READY=1 finds nobody.
    assert not (stack.state_dir / "run" / "worker.notify").exists()


def test_worker_and_web_preload_what_queries_import_before_they_fork(stack: Stack) -> None:
    log = (stack.state_dir / "logs" / "worker.log").read_text(errors="replace")
    # The shared stack declares one database (ClickHouse): its driver is imported in the main process.
    assert "preload: engine specs and 1 database driver(s) in " in log
    assert "preload before the pool forks failed" not in log
    assert log.index("preload: engine specs") < log.index("ready.")
    # The web's gunicorn master does the same before it forks its workers (gunicorn_hooks.py).
    web = (stack.state_dir / "logs" / "web.log").read_text(errors="replace")
    assert "superset-async: engine specs and 1 database driver(s) preloaded in " in web
    assert web.index("database driver(s) preloaded") < web.index("Booting worker")


_SEND_READY = "import os; from superset_async_glue.sd_notify import notify; notify(os.environ['NOTIFY_SOCKET'])"


def test_a_notify_socket_counts_ready_from_the_expected_process_only(tmp_path: Path) -> None:
    listener = NotifyListener(tmp_path / "worker.notify")
    try:
        env = {**os.environ, "NOTIFY_SOCKET": listener.name}
        subprocess.run([sys.executable, "-c", _SEND_READY], env=env, check=True)
        assert not listener.ready_from(os.getpid(), 0.2)  # READY=1 from a process not waited for (a child)
        assert notify(listener.name)
        started = time.monotonic()
        assert listener.ready_from(os.getpid(), 5.0)
        assert time.monotonic() - started < 0.1  # at once, not at a poll's end
    finally:
        listener.close()
    assert not (tmp_path / "worker.notify").exists()
    assert not notify(listener.name)  # nobody listens: the sender is told so, never blocked


def test_a_notify_socket_too_long_for_a_path_is_abstract(tmp_path: Path) -> None:
    listener = NotifyListener(tmp_path / ("x" * 120))
    try:
        assert listener.name.startswith("@")
        assert notify(listener.name)
        assert listener.ready_from(os.getpid(), 1.0)
    finally:
        listener.close()
