"""The local runner: a real stack (Redis, ClickHouse, gunicorn, Celery worker and beat) on free ports."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

import pytest
import redis
import requests
from fixtures.common import BIN, free_port, run_cli, write_secret
from fixtures.stack import Stack, leftover_processes, require_servers
from fixtures.superset_api import SupersetClient
from superset_async_glue import procfs
from superset_async_glue.commands import role_command
from superset_async_glue.loading import load_settings
from superset_async_glue.runner.demo import DEMO_DATABASE_NAME, DEMO_ROWS

ROLES = ["redis", "clickhouse", "web", "worker", "beat"]


def test_async_sql_lab_query_on_clickhouse_returns_the_demo_rows(stack: Stack) -> None:
    client = SupersetClient(stack.web_url, stack.admin_username, stack.admin_password())
    database_id = client.database_id(stack.clickhouse_database_name)
    database = client.get(f"api/v1/database/{database_id}")["result"]
    assert database["allow_run_async"] is True
    assert database["expose_in_sqllab"] is True

    outcome = client.run_async(database_id, "SELECT id, name, country, population FROM demo.cities ORDER BY id")

    assert outcome.state == "success", outcome.error
    assert outcome.columns == ["id", "name", "country", "population"]
    assert [tuple(row) for row in outcome.rows] == list(DEMO_ROWS)
    print(f"async SQL Lab query: {outcome.seconds:.2f}s from submit to results")


def test_status_reports_every_role_running(stack: Stack) -> None:
    result = stack.cli("status")
    assert result.code == 0, result.stdout + result.stderr
    for role in ROLES:
        assert f"  {role:<10} running (pid " in result.stdout
    as_json = json.loads(stack.cli("status", "--json").stdout)
    assert as_json["code"] == 0
    assert as_json["roles"] == dict.fromkeys(ROLES, "running")


def test_web_worker_beat_command_lines_come_from_role_command(stack: Stack) -> None:
    recorded = stack.stack_json()
    settings = load_settings(stack.settings_path)
    for role in ("web", "worker", "beat"):
        expected = role_command(role, settings, stack.config_path, BIN)
        assert tuple(recorded["processes"][role]["argv"]) == expected.argv
        environ = Path(f"/proc/{recorded['processes'][role]['pid']}/environ").read_bytes().split(b"\0")
        for key, value in expected.env.items():
            assert f"{key}={value}".encode() in environ


def test_stack_json_describes_the_stack(stack: Stack) -> None:
    data = stack.stack_json()
    assert data["format"] == 1
    assert data["status"] == "ready"
    assert data["web_url"] == stack.web_url
    assert data["settings"] == str(stack.settings_path)
    assert data["config"] == str(stack.config_path)
    assert data["admin_password_file"] == str(stack.admin_password_file)
    assert data["clickhouse"]["database_name"] == DEMO_DATABASE_NAME
    assert data["clickhouse"]["http_port"] == stack.clickhouse_http_port
    assert data["bootstrap"]["exit_code"] == 0
    for role in ROLES:
        process = data["processes"][role]
        assert procfs.is_alive(process["pid"], process["start_ticks"])
        assert process["pgid"] == process["pid"]  # each role leads its own process group
        assert Path(process["log"]).is_file()


def test_redis_is_private_persistent_and_its_password_stays_off_command_lines(stack: Stack) -> None:
    password = stack.redis_password()
    client = redis.Redis(host=stack.redis_host, port=stack.redis_port, password=password)
    config = cast(dict[str, str], client.config_get("*"))
    assert config["appendonly"] == "yes"
    assert config["bind"] == "127.0.0.1"
    assert config["dir"] == str(stack.state_dir / "redis")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=stack.redis_host, port=stack.redis_port).ping()
    for pid in stack.processes().values():
        assert password.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    run_dir = stack.state_dir / "run"
    assert run_dir.stat().st_mode & 0o777 == 0o700
    assert (run_dir / "redis.conf").stat().st_mode & 0o777 == 0o600
    for secret in (stack.state_dir / "secrets").iterdir():
        assert secret.stat().st_mode & 0o777 == 0o600


def test_clickhouse_runs_from_private_copies_of_debians_config(stack: Stack) -> None:
    config_dir = stack.state_dir / "run" / "clickhouse"
    config = (config_dir / "config.xml").read_text()
    users = (config_dir / "users.xml").read_text()
    assert "<listen_host>127.0.0.1</listen_host>" in config
    assert config.count("<listen_host>") == 1
    assert f"<http_port>{stack.clickhouse_http_port}</http_port>" in config
    assert f"<path>{stack.state_dir}/clickhouse/</path>" in config
    assert "/var/lib/clickhouse" not in config
    assert "/var/log/clickhouse-server" not in config
    for name in ("config.xml", "users.xml"):
        assert (config_dir / name).stat().st_mode & 0o777 == 0o600
    password = (stack.state_dir / "secrets" / "clickhouse_password").read_text().strip()
    assert password not in users  # stored as SHA-256 only
    assert hashlib.sha256(password.encode()).hexdigest() in users
    url = f"http://127.0.0.1:{stack.clickhouse_http_port}/"
    query = "SELECT count() FROM demo.cities"
    assert requests.post(url, data=query, auth=("superset", password), timeout=10).content == b"8\n"
    assert requests.post(url, data=query, auth=("superset", "wrong"), timeout=10).status_code != 200


def test_up_refuses_a_port_in_use(make_settings: object, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        password = str(write_secret(tmp_path / "redis_password"))
        settings = make_settings({"redis": {"port": port, "password_file": password}})  # type: ignore[operator]
        result = run_cli("up", "--settings", str(settings), "--state-dir", str(tmp_path / "runner"))
    assert result.code == 2
    assert f"port {port} (redis.port)" in result.stderr
    assert f"see what holds it with `ss -ltnp 'sport = :{port}'`" in result.stderr


def _wait_for(path: Path, text: str, process: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = path.read_text(errors="replace")
        if text in output:
            return output
        if process.poll() is not None:
            break
        time.sleep(0.5)
    pytest.fail(f"{text!r} did not appear (exit {process.poll()}); output so far:\n{path.read_text()}")


def _no_process_left(state_dir: Path, processes: dict[str, dict[str, int]]) -> None:
    assert leftover_processes(state_dir) == {}
    for role, process in processes.items():
        assert not procfs.is_alive(process["pid"]), role
        assert procfs.group_members(process["pgid"]) == [], role


def test_demo_lifecycle_killed_worker_ctrl_c_restart_and_down_after_a_lost_supervisor(tmp_path: Path) -> None:
    """The embedded demo (no --settings), end to end:
    1. foreground `up`; a worker killed under it is reported by the supervisor's loop (with its log's
       tail), restarted after 1 s, and `status` shows the restart and its cause; beat killed just
       before Ctrl-C is not restarted while stopping; Ctrl-C stops every process group;
    2. `up --detach` again on the same state dir: settings, secrets and data are reused, bootstrap
       changes nothing; then the supervisor is SIGKILLed and `down` stops the orphaned groups itself.
    Both times no process of the stack is left."""
    require_servers()
    state_dir = tmp_path / "demo"
    output = tmp_path / "up.out"
    ports = ["--web-port", str(free_port()), "--redis-port", str(free_port()), "--clickhouse-port", str(free_port())]
    spare = ["--clickhouse-spare-port", str(free_port())]
    argv = [str(BIN / "superset-async"), "up", "--state-dir", str(state_dir), *ports, *spare]
    with output.open("wb") as sink:
        up = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # 1. foreground
        _wait_for(output, "[up] READY", up, 600)
        settings_text = (state_dir / "settings.json").read_text()
        assert json.loads(settings_text)["databases"][0]["name"] == DEMO_DATABASE_NAME
        for name in ("secret_key", "gaq_jwt_secret", "admin_password", "redis_password", "clickhouse_password"):
            assert (state_dir / "secrets" / name).stat().st_mode & 0o777 == 0o600
        banner = output.read_text()
        assert f"the password is in {state_dir / 'secrets' / 'admin_password'}" in banner
        assert f"3. check every piece: superset-async verify --state-dir {state_dir}" in banner
        assert (state_dir / "secrets" / "admin_password").read_text().strip() not in output.read_text()

        first = json.loads((state_dir / "run" / "stack.json").read_text())
        worker = first["processes"]["worker"]["pid"]
        os.kill(worker, signal.SIGKILL)
        exited = f"worker (pid {worker}) exited while the stack was running: killed by SIGKILL"
        report = _wait_for(output, f"{exited}; restarting in 1s (restart 1)", up, 30)
        assert "last lines of " + str(state_dir / "logs" / "worker.log") in report
        assert "celery@" in report.split("killed by SIGKILL", 1)[1]  # the tail of the worker's log follows
        _wait_for(output, "[up] worker: restarted (restart 1), pid ", up, 30)
        restarted = json.loads((state_dir / "run" / "stack.json").read_text())["processes"]["worker"]
        assert restarted["pid"] != worker and procfs.is_alive(restarted["pid"], restarted["start_ticks"])
        assert (restarted["restarts"], restarted["last_exit_code"]) == (1, -signal.SIGKILL)
        assert restarted["argv"] == first["processes"]["worker"]["argv"]
        assert procfs.group_members(worker) == []  # the killed leader's pool children were stopped too

        status = run_cli("status", "--state-dir", str(state_dir))
        assert status.code == 0, status.stdout
        worker_line = next(line for line in status.stdout.splitlines() if line.startswith("  worker "))
        assert worker_line.startswith(f"  worker     running (pid {restarted['pid']}, "), worker_line
        assert "; restarts 1, last exit: killed by SIGKILL at " in worker_line, worker_line
        for role in ("redis", "clickhouse", "web", "beat"):
            assert f"  {role:<10} running" in status.stdout

        beat = first["processes"]["beat"]["pid"]
        os.kill(beat, signal.SIGKILL)
        os.kill(up.pid, signal.SIGINT)  # Ctrl-C within beat's restart delay: nothing starts again
        assert up.wait(timeout=120) == 0
        text = output.read_text()
        assert "[up] SIGINT received; stopping" in text
        assert "[up] beat: restarted" not in text
        assert "[up] stopped; no process of this stack is left" in text
        _no_process_left(state_dir, first["processes"])
        _no_process_left(state_dir, json.loads((state_dir / "run" / "stack.json").read_text())["processes"])
        assert run_cli("status", "--state-dir", str(state_dir)).code == 3

        # 2. detached restart on the same state dir, then a lost supervisor
        again = run_cli("up", "--detach", "--state-dir", str(state_dir), *spare, timeout=600)
        assert again.code == 0, again.stdout + again.stderr
        assert (state_dir / "settings.json").read_text() == settings_text
        assert "clickhouse: demo.cities has 8 rows (unchanged)" in again.stdout
        assert "bootstrap: nothing changed" in again.stdout
        assert "(checked by the runner)" in again.stdout  # the fast path, in the supervisor itself
        second = json.loads((state_dir / "run" / "stack.json").read_text())
        os.kill(second["supervisor_pid"], signal.SIGKILL)
        status = run_cli("status", "--state-dir", str(state_dir))
        assert status.code == 1
        assert f"supervisor pid {second['supervisor_pid']} not running" in status.stdout
        down = run_cli("down", "--state-dir", str(state_dir), timeout=200)
        assert down.code == 0, down.stdout + down.stderr
        assert "stopped directly: beat, worker, web, clickhouse, redis" in down.stdout
        _no_process_left(state_dir, second["processes"])
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGTERM)
            up.wait(timeout=120)
        run_cli("down", "--state-dir", str(state_dir), timeout=200)


def test_help_does_not_import_superset() -> None:
    code = "import sys; from superset_async_glue.cli import cli; sys.exit('superset' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
