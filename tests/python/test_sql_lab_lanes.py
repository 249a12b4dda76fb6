"""SQL Lab lanes (sql_lab.lanes): settings rules, the lane map, the router and the rendered config (pure, fast)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import astuple
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery
from celery import _state as celery_state
from fixtures.common import SettingsFactory
from fixtures.redis_server import RedisServer
from superset_async_glue.beat_app import superset_config
from superset_async_glue.commands import role_command, worker_argv
from superset_async_glue.errors import SettingsError, UsageError
from superset_async_glue.flower_metrics import QueueDepthCollector
from superset_async_glue.loading import load_settings
from superset_async_glue.render import render_config
from superset_async_glue.sql_lab_lanes import (
    lane_map,
    lane_queue,
    lane_queues,
    queue_for_database,
    queue_has_consumer,
    route_sql_lab_query,
)
from superset_async_glue.sqllab_watchdog import FAILURE_PREFIX, PendingWatchdog, failure_message
from superset_async_glue.verify.platform_io import UNITS, systemd_units
from test_settings import run_main

INTERACTIVE = "ClickHouse (interactive)"
LANES: dict[str, Any] = {"sql_lab": {"lanes": {"interactive": {"databases": [INTERACTIVE], "concurrency": 1}}}}


def _problems(make_settings: SettingsFactory, overrides: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(SettingsError) as raised:
        load_settings(make_settings(overrides))
    return [(p.location, p.message) for p in raised.value.problems]


# (case id, overrides, location that must be named, text its message must contain)
INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "database-in-two-lanes",
        {"sql_lab": {"lanes": {"a": {"databases": ["mart"]}, "b": {"databases": ["mart"]}}}},
        "sql_lab.lanes.b.databases",
        "keep it in one lane",
    ),
    ("lane-without-database", {"sql_lab": {"lanes": {"a": {"databases": []}}}}, "sql_lab.lanes.a.databases", "empty"),
    (
        "lane-name",
        {"sql_lab": {"lanes": {"Fast-Lane": {"databases": ["mart"]}}}},
        'sql_lab.lanes["Fast-Lane"]',
        "rename",
    ),
    (
        "lane-concurrency",
        {"sql_lab": {"lanes": {"a": {"databases": ["mart"], "concurrency": 65}}}},
        "sql_lab.lanes.a.concurrency",
        "64",
    ),
    (
        "lane-database-runs-in-the-web",
        {
            **LANES,
            "databases": [{"name": INTERACTIVE, "uri": "clickhousedb://u@h:8123/d", "allow_run_async": False}],
        },
        "sql_lab.lanes.interactive.databases",
        "allow_run_async",
    ),
    (
        "lane-queue-in-worker-queues",
        {**LANES, "worker": {"queues": ["celery", "sql_lab_lane_interactive"]}},
        "worker.queues",
        "remove it from worker.queues",
    ),
    (
        "lane-worker-args",
        {**LANES, "worker": {"extra_args": ["--max-memory-per-child=500000", "--concurrency=8"]}},
        "worker.extra_args",
        "contains --concurrency",
    ),
    ("lane-worker-beat", {**LANES, "worker": {"extra_args": ["-B"]}}, "worker.extra_args", "contains -B"),
]


@pytest.mark.parametrize(("overrides", "location", "text"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_lanes_are_refused_naming_the_field(
    make_settings: SettingsFactory, overrides: dict[str, Any], location: str, text: str
) -> None:
    problems = _problems(make_settings, overrides)
    assert any(where == location and text in message for where, message in problems), problems


def test_a_lane_database_not_declared_in_databases_is_allowed(make_settings: SettingsFactory) -> None:
    # databases added in the UI have no entry in databases[]
    settings = load_settings(make_settings(LANES))
    assert lane_map(settings) == {INTERACTIVE: "sql_lab_lane_interactive"}
    assert lane_queues(settings) == ("sql_lab_lane_interactive",)
    assert settings.sql_lab.lanes["interactive"].concurrency == 1


def test_lane_queue_and_route() -> None:
    lanes = {INTERACTIVE: lane_queue("interactive")}
    assert lane_queue("interactive") == "sql_lab_lane_interactive"
    assert queue_for_database(lanes, INTERACTIVE) == {"queue": "sql_lab_lane_interactive"}
    assert queue_for_database(lanes, "ClickHouse") is None
    assert queue_for_database(lanes, None) is None


def test_the_router_leaves_every_other_task_on_the_default_queue() -> None:
    for task in (
        "reports.scheduler",
        "reports.prune_log",
        "load_chart_data_into_cache",
        "load_explore_json_into_cache",
    ):
        assert route_sql_lab_query(task, (1,), {}, {}) is None
    # no Flask app context (beat, Flower): the default queue, without importing Superset
    assert route_sql_lab_query("sql_lab.get_sql_results", (1, "SELECT 1"), {}, {}) is None


# In a bare interpreter: import the rendered config as beat and Flower do (no Superset), route the tasks
# beat sends and a SQL Lab task outside any request, and report whether Superset got imported.
_PROBE = """
import importlib.util, json, sys
from celery import Celery
spec = importlib.util.spec_from_file_location('superset_config', sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
app = Celery(set_as_current=False); app.config_from_object(m.CeleryConfig)
queues = [app.amqp.router.route({}, t, (7,))['queue'].name for t in ('reports.scheduler', 'sql_lab.get_sql_results')]
print(json.dumps({
    'routes': list(getattr(m.CeleryConfig, 'task_routes', ())),
    'lanes': getattr(m.CeleryConfig, 'superset_async_sql_lab_lanes', None),
    'queues': queues,
    'superset': any(n == 'superset' or n.startswith('superset.') for n in sys.modules),
}))
"""


@pytest.mark.parametrize("with_lanes", [True, False])
def test_rendered_config_routes_only_with_lanes_and_imports_without_superset(
    make_settings: SettingsFactory, tmp_path: Path, with_lanes: bool
) -> None:
    config = tmp_path / "superset_config.py"
    config.write_text(render_config(load_settings(make_settings(LANES if with_lanes else {}))))
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, str(config)], capture_output=True, text=True, timeout=60, check=False
    )
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert found["superset"] is False
    assert found["queues"] == ["celery", "celery"]
    if with_lanes:
        assert found["routes"] == ["superset_async_glue.sql_lab_lanes.route_sql_lab_query"]
        assert found["lanes"] == {INTERACTIVE: "sql_lab_lane_interactive"}
    else:
        assert found["routes"] == []
        assert found["lanes"] is None


def test_lane_worker_argv_is_the_worker_s_with_its_concurrency_queue_and_node_name(
    make_settings: SettingsFactory,
) -> None:
    overrides = {**LANES, "worker": {"concurrency": 3, "queues": ["celery"], "max_tasks_per_child": 50}}
    settings = load_settings(make_settings(overrides))
    bins = Path("/env/bin")
    main_worker = worker_argv(settings, bins)
    assert main_worker == list(role_command("worker", settings, Path("/c.py"), bins).argv)
    lane = worker_argv(settings, bins, "interactive")
    assert "--concurrency=3" in main_worker and "--queues=celery" in main_worker
    assert not any(a.startswith("--hostname") for a in main_worker)
    expected = [
        "--concurrency=3" if a == "--concurrency=1" else a
        for a in lane
        if a not in ("--queues=sql_lab_lane_interactive", "--hostname=lane_interactive@%h")
    ]
    assert expected == [a for a in main_worker if a != "--queues=celery"]
    assert "--concurrency=1" in lane
    assert "--queues=sql_lab_lane_interactive" in lane and "--hostname=lane_interactive@%h" in lane
    with pytest.raises(UsageError, match=r"no SQL Lab lane named 'fast' in the settings; lanes: interactive"):
        worker_argv(settings, bins, "fast")


def test_exec_worker_lane_prints_the_lane_command_and_names_the_lanes_of_an_unknown_one(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    files = ["--settings", str(make_settings(LANES)), "--config", str(tmp_path / "c.py")]
    code, out, err = astuple(run_main("exec", "worker", "--lane", "interactive", *files, "--print"))
    assert code == 0, err
    assert "--queues=sql_lab_lane_interactive" in json.loads(out)["argv"]
    code, out, err = astuple(run_main("exec", "worker", "--lane", "nope", *files, "--print"))
    assert code == 2 and "no SQL Lab lane named 'nope'" in err and "lanes: interactive" in err, (code, err)
    code, out, err = astuple(run_main("exec", "beat", "--lane", "interactive", *files, "--print"))
    assert code == 2 and "exec worker" in err, (code, err)


def test_watchdog_and_flower_metric_read_the_lane_queues_on_a_real_broker(
    make_settings: SettingsFactory, tmp_path: Path, redis_server: RedisServer
) -> None:
    """A query waiting in a lane's queue is on the broker (the watchdog must not fail it as lost in
    transit), and Flower's queue-length metric shows that queue beside the default one."""
    dbs = {"broker": 11, "results": 12, "cache": 13, "data_cache": 14, "async_events": 15}
    redis = {"port": redis_server.port, "password_file": str(redis_server.password_file), "dbs": dbs}
    config = tmp_path / "superset_config.py"
    config.write_text(render_config(load_settings(make_settings({**LANES, "redis": redis}))))
    celery_config = superset_config(str(config)).CELERY_CONFIG
    app = Celery("lanes-test", set_as_current=False)
    app.config_from_object(celery_config)
    broker = redis_server.client(dbs["broker"])
    broker.flushdb()
    previous = celery_state.get_current_app()
    try:
        app.send_task("sql_lab.get_sql_results", args=(7, "SELECT 1"), queue="sql_lab_lane_interactive")
        app.send_task("sql_lab.get_sql_results", args=(8, "SELECT 1"))
        watchdog = PendingWatchdog(SimpleNamespace(config={"CELERY_CONFIG": celery_config}), 30)  # type: ignore[arg-type]
        assert watchdog.tasks_on_broker() == {7, 8}
        app.set_current()  # Flower's collector reads the app Flower runs
        families = {f.name: f for f in QueueDepthCollector().collect()}
        lengths = {s.labels["queue"]: s.value for s in families["superset_async_celery_queue_length"].samples}
        assert lengths == {"celery": 1, "sql_lab_lane_interactive": 1}
    finally:
        previous.set_current()
        broker.flushdb()
        app.close()


# (queue, node names that answered a ping, whether one of them consumes the queue)
CONSUMERS: list[tuple[str, list[str], bool]] = [
    ("celery", ["celery@web1"], True),
    ("celery", ["lane_interactive@web1"], False),  # a lane worker never serves the shared queue
    ("celery", [], False),
    ("sql_lab_lane_interactive", ["lane_interactive@web1", "celery@web1"], True),
    ("sql_lab_lane_interactive", ["celery@web1"], False),  # nor the main worker a lane's
    ("sql_lab_lane_a", ["lane_ab@web1"], False),  # another lane whose name starts alike
]


@pytest.mark.parametrize(("queue", "workers", "served"), CONSUMERS)
def test_which_worker_serves_a_queue(queue: str, workers: list[str], served: bool) -> None:
    assert queue_has_consumer(queue, workers) is served


def test_a_query_whose_lane_worker_is_missing_names_that_worker() -> None:
    message = failure_message(12.4, "interactive")
    assert message.startswith(FAILURE_PREFIX + " within 12 s")
    assert "systemctl start superset-async-worker-interactive" in message
    assert "superset-async start-role worker-interactive" in message


def test_verify_looks_for_a_unit_per_lane_under_systemd() -> None:
    units = systemd_units(("interactive",))
    assert units["worker-interactive"] == "superset-async-worker-interactive.service"
    assert units["worker"] == "superset-async-worker.service"
    assert systemd_units() == UNITS
