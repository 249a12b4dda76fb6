"""NixOS unit replay: the module's generated units, run natively, make a working stack.

Nix cannot build nixpkgs here, so the module is evaluated with the offline stubs (tests/nix) and its
units are built with /bin/sh builders, the glue package standing in as a wrapper around .venv. Then
each unit runs as systemd would run it: its ExecStart= word for word, its Environment=, its
WorkingDirectory=/StateDirectory=, and its LoadCredential= files copied into a private
$CREDENTIALS_DIRECTORY. Redis and ClickHouse are real servers on loopback (the module is configured
for an external Redis; its own Redis unit comes from nixpkgs and is covered by the VM tests).
`superset-async verify` must then pass, including an async SQL Lab query on ClickHouse.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from fixtures.common import BIN, REPO, free_port, run_cli, write_secret
from fixtures.stack import require_servers
from superset_async_glue.commands import role_command
from superset_async_glue.loading import load_settings
from superset_async_glue.runner import procfs
from superset_async_glue.runner.clickhouse_server import plan_clickhouse
from superset_async_glue.runner.demo import clickhouse_ping, seed_demo
from superset_async_glue.runner.readiness import worker_ping
from superset_async_glue.runner.redis_server import ping as redis_ping
from superset_async_glue.runner.redis_server import plan_redis
from superset_async_glue.runner.state import ProcessState, StackState, write_state
from superset_async_glue.settings import Database, secret_files

NIX_CONFIG = "experimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false\nsubstituters ="
ROLES = ("web", "worker", "beat")
DB_NAME = "ClickHouse (replay)"


@dataclass
class Unit:
    """A [Service] section as systemd reads it: repeated keys become lists."""

    name: str
    values: dict[str, list[str]] = field(default_factory=dict)

    def one(self, key: str) -> str:
        (value,) = self.values[key]
        return value

    def environment(self) -> dict[str, str]:
        env = {}
        for item in self.values.get("Environment", []):
            for assignment in shlex.split(item):
                key, _, value = assignment.partition("=")
                env[key] = value
        return env


def parse_unit(path: Path) -> Unit:
    unit = Unit(path.name)
    section = ""
    for line in path.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and section == "Service":
            key, _, value = line.partition("=")
            unit.values.setdefault(key, []).append(value)
    return unit


def module_expression(options: str) -> str:
    return f"""
let
  h = import {REPO}/tests/nix/eval.nix {{ }};
  glue = h.pkgs.writeShellScriptBin "superset-async" ''exec {BIN}/superset-async "$@"'';
in
(h.evalConfig {{
  pkgs = h.pkgs // {{ superset-async = glue; }};
  modules = [
    {REPO}/nix/modules/superset-async
    {{ services.superset-async = {{ enable = true; package = glue; {options} }}; }}
  ];
}}).config.system.build.toplevel
"""


@dataclass
class Replay:
    """The built system and the processes its units started."""

    toplevel: Path
    units: dict[str, Unit]
    settings_file: Path
    config_file: Path
    state_dir: Path
    processes: dict[str, subprocess.Popen[bytes]]
    environments: dict[str, dict[str, str]]  # unit role -> the environment it ran with
    init_output: str
    web_url: str


def start(argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(what: str, ready: object, timeout: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in logs if p.exists())
    pytest.fail(f"{what} not ready after {timeout} s\n{tails}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replay]:
    require_servers()
    if shutil.which("nix-build") is None:
        pytest.fail("nix-build not found: run scripts/setup (installs Debian's nix-bin)")
    tmp = tmp_path_factory.mktemp("replay")
    keys = {name: write_secret(tmp / f"key-{name}") for name in ("sk", "jwt", "admin", "redis", "clickhouse")}
    ports = {name: free_port() for name in ("redis", "web", "ch", "ch_spare")}
    state_dir = Path(f"/var/lib/superset-async-replay-{uuid.uuid4().hex[:8]}")
    ch_uri = f"clickhousedb://superset@127.0.0.1:{ports['ch']}/demo"
    options = f"""
      stateDir = "{state_dir}";
      secretKeyFile = "{keys["sk"]}";
      adminPasswordFile = "{keys["admin"]}";
      globalAsyncQueries.jwtSecretFile = "{keys["jwt"]}";
      redis = {{ createLocally = false; host = "127.0.0.1"; port = {ports["redis"]}; }};
      redis.passwordFile = "{keys["redis"]}";
      beat.enable = true;  # off by default with an external Redis; this host is the stack's one beat
      web = {{ port = {ports["web"]}; workers = 1; }};
      worker.concurrency = 2;
      databases."{DB_NAME}" = {{ uri = "{ch_uri}"; passwordFile = "{keys["clickhouse"]}"; }};
    """
    built = subprocess.run(
        ["nix-build", "--no-out-link", "-E", module_expression(options)],
        capture_output=True,
        text=True,
        env={**os.environ, "NIX_CONFIG": NIX_CONFIG},
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-4000:]
    toplevel = Path(built.stdout.strip().splitlines()[-1])
    units = {r: parse_unit(toplevel / "etc/systemd/system" / f"superset-async-{r}.service") for r in (*ROLES, "init")}
    # The files the units name (store paths; /etc/superset-async/ links the same ones).
    words = shlex.split(units["web"].one("ExecStart"))
    settings_file, config_file = Path(words[words.index("--settings") + 1]), Path(words[words.index("--config") + 1])
    for linked, built_file in (("settings.json", settings_file), ("superset_config.py", config_file)):
        assert (toplevel / "etc/superset-async" / linked).read_bytes() == built_file.read_bytes()
    settings = load_settings(settings_file)

    # Redis and ClickHouse: real servers, started with the runner's own plans.
    services: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        redis_plan = plan_redis(settings, tmp / "run", tmp / "redis")
        logs.append(tmp / "redis.log")
        services.append(start(list(redis_plan.argv), dict(os.environ), logs[-1]))
        ch_plan = plan_clickhouse(
            Database(name=DB_NAME, uri=ch_uri, password_file=str(keys["clickhouse"])),
            tmp / "run",
            tmp / "clickhouse",
            tmp / "clickhouse-logs",
            ports["ch_spare"],
        )
        logs.append(tmp / "clickhouse.log")
        services.append(start(list(ch_plan.argv), dict(os.environ), logs[-1], cwd=tmp))
        wait_for("redis", lambda: redis_ping(settings), 30, logs)
        wait_for("clickhouse", lambda: clickhouse_ping(ch_plan), 60, logs)
        seed_demo(ch_plan)

        def unit_env(unit: Unit) -> dict[str, str]:
            # What systemd gives the unit: its Environment= (PATH excepted: the stub store paths
            # are not real tools) and a private credentials directory built from LoadCredential=.
            creds = tmp / "credentials" / unit.name
            creds.mkdir(parents=True, exist_ok=True)
            for item in unit.values.get("LoadCredential", []):
                name, _, path = item.partition(":")
                shutil.copyfile(path, creds / name)
                (creds / name).chmod(0o400)
            env = {k: v for k, v in unit.environment().items() if k != "PATH"}
            return {**os.environ, **env, "CREDENTIALS_DIRECTORY": str(creds)}

        # StateDirectory= and WorkingDirectory=, as systemd prepares them.
        init = units["init"]
        state_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
        assert init.one("StateDirectory") == state_dir.name
        environments = {role: unit_env(unit) for role, unit in units.items()}
        ran = subprocess.run(
            shlex.split(init.one("ExecStart")),
            env=environments["init"],
            cwd=init.one("WorkingDirectory"),
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
        for role in ROLES:
            unit = units[role]
            logs.append(tmp / f"{role}.log")
            processes[role] = start(
                shlex.split(unit.one("ExecStart")), environments[role], logs[-1], cwd=Path(unit.one("WorkingDirectory"))
            )
        web_url = f"http://127.0.0.1:{ports['web']}"
        wait_for("web /health", lambda: _health(web_url), 180, logs)
        wait_for("worker ping", lambda: bool(worker_ping(settings)), 120, logs)
        _record_for_verify(
            state_dir=state_dir,
            settings=settings_file,
            config=config_file,
            web_url=web_url,
            admin=keys["admin"],
            processes=processes,
        )
        yield Replay(
            toplevel,
            units,
            settings_file,
            config_file,
            state_dir,
            processes,
            environments,
            ran.stdout + ran.stderr,
            web_url,
        )
    finally:
        for proc in [*processes.values(), *services]:
            stop(proc)
        shutil.rmtree(state_dir, ignore_errors=True)


def _health(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _record_for_verify(
    *,
    state_dir: Path,
    settings: Path,
    config: Path,
    web_url: str,
    admin: Path,
    processes: dict[str, subprocess.Popen[bytes]],
) -> None:
    """Describe the replayed processes in stack.json, where verify looks for a local stack's processes."""
    records = {}
    for role, proc in processes.items():
        ticks = procfs.start_ticks(proc.pid)
        assert ticks is not None, f"{role} exited early"
        records[role] = ProcessState(
            pid=proc.pid, pgid=proc.pid, start_ticks=ticks, started_at=time.time(), log="", argv=tuple(proc.args)
        )  # type: ignore[arg-type]
    me = os.getpid()
    write_state(
        state_dir,
        StackState(
            state_dir=str(state_dir),
            settings=str(settings),
            config=str(config),
            web_url=web_url + "/",
            admin_username="admin",
            admin_password_file=str(admin),
            supervisor_pid=me,
            supervisor_start_ticks=procfs.start_ticks(me) or 0,
            supervisor_log="",
            status="ready",
            processes=records,
        ),
    )


def test_the_replayed_units_pass_verify_with_an_async_query(replay: Replay) -> None:
    result = run_cli(
        "verify", "--settings", str(replay.settings_file), "--config", str(replay.config_file), "--json", timeout=600
    )
    assert result.code == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert DB_NAME in result.stdout, result.stdout[-3000:]


def test_init_unit_bootstrapped_and_a_second_run_changes_nothing(replay: Replay) -> None:
    init = replay.units["init"]
    assert DB_NAME in replay.init_output
    again = subprocess.run(
        shlex.split(init.one("ExecStart")),
        env=replay.environments["init"],
        cwd=init.one("WorkingDirectory"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "unchanged" in again.stdout + again.stderr


def test_units_run_exactly_the_glue_command_lines(replay: Replay) -> None:
    settings = load_settings(replay.settings_file)
    for role in ROLES:
        unit = replay.units[role]
        assert unit.one("ExecStart").split()[1:] == [
            "exec",
            role,
            "--settings",
            str(replay.settings_file),
            "--config",
            str(replay.config_file),
        ]
        expected = role_command(role, settings, replay.config_file, BIN)
        # After `superset-async exec`, the process IS the role's program: python <script> <args...>
        cmdline = Path(f"/proc/{replay.processes[role].pid}/cmdline").read_bytes().decode().split("\0")[:-1]
        assert cmdline == list(expected.argv), role
        env = procfs.environ(replay.processes[role].pid) or {}
        assert {k: env[k] for k in expected.env} == expected.env, role


def test_rendered_config_is_byte_identical_to_superset_async_render(replay: Replay, tmp_path: Path) -> None:
    out = tmp_path / "superset_config.py"
    assert run_cli("render", "--settings", str(replay.settings_file), "--output", str(out)).code == 0
    assert out.read_bytes() == replay.config_file.read_bytes()


def test_credential_names_are_the_ones_the_rendered_config_reads(replay: Replay) -> None:
    settings = load_settings(replay.settings_file)
    for role in (*ROLES, "init"):
        names = {item.split(":", 1)[0] for item in replay.units[role].values["LoadCredential"]}
        assert names == set(secret_files(settings)), role
    # and no secret value reached the store
    for path in (replay.settings_file, replay.config_file, *(replay.toplevel / "etc/systemd/system").iterdir()):
        text = path.read_text()
        for key in secret_files(settings).values():
            assert Path(key[1]).read_text().strip() not in text
