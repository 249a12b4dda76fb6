"""Flower and metrics on one private stack (flower.enabled with basic auth, metrics.statsd_host set):

- Flower's Prometheus /metrics counts an async SQL Lab query's `sql_lab.get_sql_results` task as
  succeeded (flower_events_total) and times it (flower_task_runtime_seconds), and shows the worker online;
- Flower's API refuses a wrong or missing password and answers the right one; the password is in
  neither Flower's command line nor its environment;
- verify runs its Flower check (10) and it passes;
- Superset's StatsdStatsLogger sends its counters to the UDP socket this test listens on: a real
  REST request increments one.

One stack with one web worker and one worker child, no beat; the file takes about a minute here.
"""

from __future__ import annotations

import json
import re
import runpy
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from fixtures.common import free_port, run_cli
from fixtures.stack import Stack, start_stack
from fixtures.superset_api import SupersetClient
from superset_async_glue.commands import role_command
from superset_async_glue.errors import SettingsError
from superset_async_glue.flower_http import flower_url, online_workers
from superset_async_glue.loading import load_settings
from superset_async_glue.render import render_config
from superset_async_glue.render_flower import render_flower_config
from superset_async_glue.settings import secret_files

TASK = "sql_lab.get_sql_results"
FLOWER_USER = "flower-ops"
PREFIX = "superset"


@dataclass(frozen=True)
class MetricsStack:
    stack: Stack
    flower: str  # Flower's base URL, ends with "/"
    password: str
    statsd: socket.socket  # the UDP socket Superset's StatsD lines arrive on


@pytest.fixture(scope="module")
def metrics_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetricsStack]:
    root = tmp_path_factory.mktemp("metrics")
    password_file = root / "flower-password"
    password_file.write_text("correct horse battery staple\n")
    password_file.chmod(0o600)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as statsd:
        statsd.bind(("127.0.0.1", 0))
        statsd.settimeout(0.5)
        overrides = {
            "flower": {"enabled": True, "port": free_port(), "user": FLOWER_USER, "password_file": str(password_file)},
            "metrics": {"statsd_host": "127.0.0.1", "statsd_port": statsd.getsockname()[1], "statsd_prefix": PREFIX},
            "web": {"workers": 1},
            "worker": {"concurrency": 1},
            "beat": {"enabled": False},
        }
        with start_stack(root, overrides) as stack:
            url = flower_url(load_settings(stack.settings_path))
            yield MetricsStack(stack, url, "correct horse battery staple", statsd)


def scrape(flower: str) -> str:
    response = requests.get(flower + "metrics", timeout=5)
    assert response.status_code == 200, response.text[:300]
    return response.text


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when none)."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? ([0-9.eE+-]+)$", line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


def test_flower_metrics_count_an_async_querys_task(metrics_stack: MetricsStack) -> None:
    stack = metrics_stack.stack
    client = SupersetClient(stack.web_url, stack.admin_username, stack.admin_password())
    database_id = client.database_id(stack.clickhouse_database_name)
    before = scrape(metrics_stack.flower)
    succeeded_before = sample(before, "flower_events_total", type="task-succeeded", task=TASK)
    outcome = client.run_async(database_id, "SELECT 42 AS answer", timeout=60)
    assert (outcome.state, outcome.rows) == ("success", [[42]]), outcome.error
    # Task events reach Flower within a second or so; a worker shows online from its first heartbeat
    # (every 2 s), which a Flower started a moment ago may not have seen yet.
    deadline = time.monotonic() + 15
    while True:
        after = scrape(metrics_stack.flower)
        succeeded = sample(after, "flower_events_total", type="task-succeeded", task=TASK)
        if (succeeded >= succeeded_before + 1 and online_workers(after)) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert succeeded == succeeded_before + 1, f"{TASK} succeeded {succeeded_before} -> {succeeded}:\n{after}"
    assert sample(after, "flower_events_total", type="task-received", task=TASK) >= 1
    assert sample(after, "flower_task_runtime_seconds_count", task=TASK) >= 1
    assert online_workers(after), f"no worker online in Flower's /metrics:\n{after}"
    # The sample dashboard queries only metric names this Flower exposes.
    dashboard = (Path(__file__).parents[2] / "examples" / "grafana" / "superset-async.json").read_text()
    # A name counts once Flower defines it (its # TYPE line), even before its first sample: a gauge
    # such as flower_worker_number_of_currently_executing_tasks has none until a worker's event.
    exposed = set(re.findall(r"^(?:# TYPE )?((?:flower|superset_async)_\w+)[{ ]", after, re.MULTILINE))
    assert set(re.findall(r"\b(?:flower|superset_async)_\w+", dashboard)) <= exposed, sorted(exposed)


def test_flower_basic_auth_refuses_a_wrong_password(metrics_stack: MetricsStack) -> None:
    api = metrics_stack.flower + "api/workers?refresh=1"  # asks the workers now (Celery inspect)
    assert requests.get(api, timeout=5).status_code == 401
    assert requests.get(api, auth=(FLOWER_USER, "wrong"), timeout=5).status_code == 401
    assert requests.get(api, auth=("flower", metrics_stack.password), timeout=5).status_code == 401
    right = requests.get(api, auth=(FLOWER_USER, metrics_stack.password), timeout=5)
    assert right.status_code == 200, right.text[:300]
    assert any(name.startswith("celery@") for name in right.json()), right.text[:300]
    pid = metrics_stack.stack.processes()["flower"]
    for part in ("cmdline", "environ"):
        text = Path(f"/proc/{pid}/{part}").read_bytes()
        assert metrics_stack.password.encode() not in text, f"Flower's password is in its {part}"


def test_the_runner_says_where_flower_is_and_verify_uses_it(metrics_stack: MetricsStack) -> None:
    supervisor_log = (metrics_stack.stack.state_dir / "logs" / "supervisor.log").read_text()
    assert f"[up] Flower at {metrics_stack.flower} (Prometheus: {metrics_stack.flower}metrics" in supervisor_log
    assert metrics_stack.stack.cli("status").stdout.count("flower     running") == 1
    result = metrics_stack.stack.cli("verify", "--no-query", "--json")
    report = json.loads(result.stdout)
    flower = next(c for c in report["checks"] if c["key"] == "flower")
    assert flower["status"] == "pass", flower
    assert flower["details"]["api"] == "200" and flower["details"]["online"], flower
    assert result.code == 0, result.stdout[-2000:] + result.stderr
    assert metrics_stack.password not in result.stdout + result.stderr


def test_superset_sends_statsd_counters(metrics_stack: MetricsStack) -> None:
    stack, sink = metrics_stack.stack, metrics_stack.statsd
    _drain(sink, seconds=0.0)
    client = SupersetClient(stack.web_url, stack.admin_username, stack.admin_password())
    client.database_id(stack.clickhouse_database_name)  # GET /api/v1/database/
    expected = f"{PREFIX}.DatabaseRestApi.get_list.success:1|c"
    lines = _drain(sink, seconds=5.0, until=expected)
    assert expected in lines, f"{expected!r} did not arrive on {sink.getsockname()}; got {lines}"
    assert all(x.startswith(PREFIX + ".") for x in lines), lines


def test_flower_metrics_show_the_queue_depth(metrics_stack: MetricsStack) -> None:
    # Last of the stack's tests: it stops the worker, so that two queries wait in the broker's queue.
    stack = metrics_stack.stack
    client = SupersetClient(stack.web_url, stack.admin_username, stack.admin_password())
    database_id = client.database_id(stack.clickhouse_database_name)
    idle = scrape(metrics_stack.flower)
    assert sample(idle, "superset_async_celery_broker_up") == 1, idle
    assert sample(idle, "superset_async_celery_queue_length", queue="celery") == 0, idle
    stopped = stack.cli("stop-role", "worker")
    assert stopped.code == 0, stopped.stdout + stopped.stderr
    try:
        queued = [client.submit_async(database_id, f"SELECT {n} AS n") for n in (1, 2)]
        deadline = time.monotonic() + 10
        while (
            waiting := sample(scrape(metrics_stack.flower), "superset_async_celery_queue_length", queue="celery")
        ) < 2:
            assert time.monotonic() < deadline, f"queue length {waiting}, two queries submitted with no worker"
            time.sleep(0.3)
        assert waiting == 2
    finally:
        started = stack.cli("start-role", "worker")
    assert started.code == 0, started.stdout + started.stderr
    deadline = time.monotonic() + 90
    while (states := [client.query(q.query_id)["status"] for q in queued]) != ["success", "success"]:
        assert time.monotonic() < deadline, f"the queued queries ended {states} after the worker started"
        time.sleep(0.5)
    assert sample(scrape(metrics_stack.flower), "superset_async_celery_queue_length", queue="celery") == 0


def _drain(sink: socket.socket, seconds: float, until: str | None = None) -> list[str]:
    """The StatsD lines received within `seconds` (returns early once `until` arrived)."""
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    while until not in lines:
        try:
            lines += sink.recv(65535).decode("utf-8", "replace").splitlines()
        except TimeoutError:
            if time.monotonic() >= deadline:
                break
    return lines


# -- settings and rendering, no stack (milliseconds) ------------------------------------------------


def _settings(tmp_path: Path, **flower: object) -> Path:
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {
                "state_dir": str(tmp_path),
                "secret_key_file": "/run/keys/k",
                "redis": {"password_file": "/run/keys/r"},
                "global_async_queries": {"enabled": False},
                "flower": {"enabled": True, **flower},
            }
        )
    )
    return path


def test_flower_beyond_loopback_needs_a_password_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(_settings(tmp_path, bind="192.0.2.10"))
    assert "flower.password_file: required when flower.bind (192.0.2.10) is not a loopback address" in str(
        refused.value
    )
    for loopback in ("127.0.0.1", "::1", "localhost"):
        assert load_settings(_settings(tmp_path, bind=loopback)).flower.bind == loopback


def test_flowers_password_is_read_by_its_config_file_never_passed(tmp_path: Path) -> None:
    settings = load_settings(_settings(tmp_path, bind="192.0.2.10", password_file="/run/keys/flower"))
    config = tmp_path / "superset_config.py"
    command = role_command("flower", settings, config, Path("/venv/bin"))
    assert f"--conf={tmp_path / 'flowerconfig.py'}" in command.argv
    assert not any("basic_auth" in arg or "/run/keys/flower" in arg for arg in command.argv)
    assert not any(k.startswith("FLOWER_") for k in command.env)
    assert secret_files(settings)["flower_password"] == ("flower.password_file", "/run/keys/flower")
    rendered = render_flower_config(settings)
    assert "_flower_password('flower.password_file', '/run/keys/flower', 'flower_password')" in rendered
    assert "worker_send_task_events = True" in render_config(settings)


def test_flowerconfig_reads_its_password_by_the_glues_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The rendered file carries secret_file_reader.py verbatim: the credential first, then the file,
    # a trailing newline dropped, and a short message (no traceback, no value) when it is missing.
    password = tmp_path / "flower-password"
    password.write_text("from-the-file\n")
    settings = load_settings(_settings(tmp_path, bind="192.0.2.10", password_file=str(password)))
    config = tmp_path / "flowerconfig.py"
    config.write_text(render_flower_config(settings))
    assert runpy.run_path(str(config))["basic_auth"] == ["flower:from-the-file"]
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "flower_password").write_text("from-systemd")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    assert runpy.run_path(str(config))["basic_auth"] == ["flower:from-systemd"]
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    password.unlink()
    with pytest.raises(
        SystemExit, match=r"^superset-async flower: flower.password_file: cannot read secret file .*No such file"
    ):
        runpy.run_path(str(config))


def test_render_flower_writes_the_same_file_through_the_cli_the_module_builds_with(tmp_path: Path) -> None:
    # The NixOS module renders flowerconfig.py at build time with `superset-async render --flower`:
    # the one entry point every build has on its PATH.
    settings_path = _settings(tmp_path, bind="192.0.2.10", password_file="/run/keys/flower")
    output = tmp_path / "flowerconfig.py"
    result = run_cli("render", "--flower", "--settings", str(settings_path), "--output", str(output))
    assert result.code == 0, result.stderr
    assert output.read_text() == render_flower_config(load_settings(settings_path))
