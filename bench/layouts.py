"""The two stacks bench/startup_memory.py compares, and the ClickHouse both query.

A, the seed's hand-made layout, scripted here from the same virtualenv: a plain superset_config.py
(Redis DB 0 broker, 1 results, 2 cache, 3 data cache, 4 GAQ stream), `superset db upgrade`,
`fab create-admin` and `superset init` on first start, then Redis, gunicorn (2 workers x 4 gthread
threads), `celery worker --pool=prefork -O fair -c 4` and `celery beat` started together; the
database is registered through the REST API, as a person does in the UI.

B, our runner: `superset-async up --detach` on the demo settings with worker.concurrency 4 and
`--clickhouse none`, so that both layouts use the one ClickHouse server started here.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Protocol

from stack_procs import processes
from superset_async_glue.loading import load_settings
from superset_async_glue.runner.clickhouse_server import ClickHousePlan, local_clickhouse_database, plan_clickhouse
from superset_async_glue.runner.demo import DEMO_DATABASE_NAME, clickhouse_ping, demo_settings, seed_demo

BIN = Path(sys.executable).parent
CONCURRENCY = 4


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop_sessions(leaders: list[subprocess.Popen[bytes]], grace: float = 30.0) -> None:
    """SIGTERM each session leader's group, SIGKILL what is left after `grace` seconds; reap the leaders."""
    for leader in leaders:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader.pid, signal.SIGTERM)
    sessions = {leader.pid for leader in leaders}
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        for leader in leaders:
            leader.poll()  # a zombie leader would keep its session in /proc
        if not processes(sessions):
            return
        time.sleep(0.1)
    for leader in leaders:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()


class SharedClickHouse:
    """One ClickHouse server (the runner's own plan: Debian's server, private config, demo table)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.http_port = free_port()
        state = root / "state"
        state.mkdir(parents=True, exist_ok=True)
        settings = load_settings(demo_settings(state, free_port(), free_port(), self.http_port))
        declared = local_clickhouse_database(settings)
        assert declared is not None and declared.password_file is not None  # noqa: S101 - the demo declares one
        self.password_file = declared.password_file
        self.password = Path(self.password_file).read_text().strip()
        self.plan: ClickHousePlan = plan_clickhouse(declared, root / "run", root / "data", root / "logs", free_port())
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.root / "logs" / "stdout.log").open("ab") as log:
            self.process = subprocess.Popen(
                self.plan.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 90
        while not clickhouse_ping(self.plan):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(f"ClickHouse did not start; see {self.root / 'logs'}")
            time.sleep(0.3)
        seed_demo(self.plan)

    def stop(self) -> None:
        if self.process is not None:
            _stop_sessions([self.process])

    def uri(self, with_password: bool) -> str:
        auth = f"superset:{self.password}" if with_password else "superset"
        return f"clickhousedb://{auth}@127.0.0.1:{self.http_port}/{self.plan.database}"


class Layout(Protocol):
    name: str
    state: Path  # its logs are in state/logs (worker.log: the phases of each SQL Lab task)
    base_url: str
    username: str
    password: str
    # Registered by the layout's own start (B's bootstrap), or to be registered through the API (A).
    registers_database: bool

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def roles(self) -> dict[str, int]: ...  # role -> session id, for PSS
    def sessions(self) -> set[int]: ...  # every session of the stack, for CPU time


A_CONFIG = """\
# The seed's hand-made superset_config.py (written by bench/layouts.py).
import redis
from cachelib.redis import RedisCache
from celery.schedules import crontab

SECRET_KEY = {secret_key!r}
SQLALCHEMY_DATABASE_URI = "sqlite:///{state}/superset.db"
FEATURE_FLAGS = {{"GLOBAL_ASYNC_QUERIES": True, "SQLLAB_BACKEND_PERSISTENCE": True}}
REDIS = "redis://127.0.0.1:{redis_port}"

CACHE_CONFIG = {{
    "CACHE_TYPE": "RedisCache",
    "CACHE_DEFAULT_TIMEOUT": 86400,
    "CACHE_KEY_PREFIX": "superset_cache_",
    "CACHE_REDIS_URL": REDIS + "/2",
}}
DATA_CACHE_CONFIG = {{
    "CACHE_TYPE": "RedisCache",
    "CACHE_DEFAULT_TIMEOUT": 86400,
    "CACHE_KEY_PREFIX": "superset_data_",
    "CACHE_REDIS_URL": REDIS + "/3",
}}
RESULTS_BACKEND = RedisCache(host=redis.Redis.from_url(REDIS + "/1"), key_prefix="superset_results")


class CeleryConfig:
    broker_url = REDIS + "/0"
    result_backend = REDIS + "/1"
    imports = (
        "superset.sql_lab",
        "superset.tasks.scheduler",
        "superset.tasks.thumbnails",
        "superset.tasks.cache",
        "superset.tasks.slack",
    )
    worker_prefetch_multiplier = 1
    task_acks_late = False
    beat_schedule = {{
        "reports.scheduler": {{"task": "reports.scheduler", "schedule": crontab(minute="*", hour="*")}},
        "reports.prune_log": {{"task": "reports.prune_log", "schedule": crontab(minute=0, hour=0)}},
    }}


CELERY_CONFIG = CeleryConfig

GLOBAL_ASYNC_QUERIES_JWT_SECRET = {jwt_secret!r}
GLOBAL_ASYNC_QUERIES_TRANSPORT = "polling"
GLOBAL_ASYNC_QUERIES_CACHE_BACKEND = {{
    "CACHE_TYPE": "RedisCache",
    "CACHE_REDIS_HOST": "127.0.0.1",
    "CACHE_REDIS_PORT": {redis_port},
    "CACHE_REDIS_DB": 4,
}}
"""


class SeedLayout:
    """A: the seed's layout, every process a session leader started by this benchmark."""

    name = "A"
    registers_database = False

    def __init__(self, root: Path) -> None:
        self.state = root
        self.state.mkdir(parents=True, exist_ok=True)
        self.web_port, self.redis_port = free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{self.web_port}/"
        self.username, self.password = "admin", secrets.token_urlsafe(16)
        self.config = self.state / "superset_config.py"
        self.config.write_text(
            A_CONFIG.format(
                secret_key=secrets.token_urlsafe(42),
                jwt_secret=secrets.token_hex(32),
                state=self.state,
                redis_port=self.redis_port,
            )
        )
        self.env = {
            **os.environ,
            "SUPERSET_CONFIG_PATH": str(self.config),
            "SUPERSET_HOME": str(self.state),
            "FLASK_APP": "superset",
            "PYTHONUNBUFFERED": "1",
        }
        self.logs = self.state / "logs"
        self.logs.mkdir(exist_ok=True)
        self.initialised = False
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def _spawn(self, role: str, argv: list[str]) -> None:
        with (self.logs / f"{role}.log").open("ab") as log:
            self.procs[role] = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.state, start_new_session=True
            )

    def _superset(self, *args: str) -> None:
        with (self.logs / "init.log").open("ab") as log:
            subprocess.run(
                [str(BIN / "python"), str(BIN / "superset"), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.state,
                check=True,
            )

    def start(self) -> None:
        py = str(BIN / "python")
        (self.state / "redis").mkdir(exist_ok=True)
        self._spawn(
            "redis",
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--dir", str(self.state / "redis")],
        )
        if not self.initialised:  # the seed's README: upgrade, create-admin, init, then start
            self._superset("db", "upgrade")
            self._superset(
                "fab", "create-admin", "--username", self.username, "--firstname", "Ad", "--lastname", "Min",
                "--email", "admin@example.invalid", "--password", self.password,
            )  # fmt: skip
            self._superset("init")
            self.initialised = True
        celery = [py, str(BIN / "celery"), "--app=superset.tasks.celery_app:app"]
        self._spawn(
            "web",
            [
                py, str(BIN / "gunicorn"), f"--bind=127.0.0.1:{self.web_port}", "--workers=2",
                "--worker-class=gthread", "--threads=4", "--timeout=120", "--limit-request-line=0",
                "--limit-request-field_size=0", "--no-control-socket", "superset.app:create_app()",
            ],
        )  # fmt: skip
        self._spawn("worker", [*celery, "worker", "--pool=prefork", "-O", "fair", f"-c{CONCURRENCY}", "-l", "INFO"])
        self._spawn("beat", [*celery, "beat", f"--schedule={self.state}/celerybeat-schedule", "-l", "INFO"])

    def stop(self) -> None:
        _stop_sessions([self.procs[r] for r in ("web", "worker", "beat") if r in self.procs])
        _stop_sessions([self.procs["redis"]] if "redis" in self.procs else [])
        self.procs = {}

    def roles(self) -> dict[str, int]:
        return {role: p.pid for role, p in self.procs.items()}

    def sessions(self) -> set[int]:
        return set(self.roles().values())


# B's lane variant: the demo ClickHouse registered a second time, its queries on a lane of their own.
LANE = "interactive"
LANE_DATABASE = "ClickHouse (interactive)"
LANE_CONCURRENCY = 1


class RunnerLayout:
    """B: `superset-async up --detach`, demo settings with worker.concurrency 4, the shared ClickHouse.

    With `lane`, the same ClickHouse is declared a second time as LANE_DATABASE, whose SQL Lab
    queries go to the lane LANE (sql_lab.lanes) and its own worker of LANE_CONCURRENCY slot(s).
    """

    name = "B"
    registers_database = True

    def __init__(self, root: Path, clickhouse: SharedClickHouse, lane: bool = False) -> None:
        self.state = root
        self.state.mkdir(parents=True, exist_ok=True)
        path = demo_settings(self.state, free_port(), free_port(), clickhouse.http_port)
        data = json.loads(path.read_text())
        data["worker"]["concurrency"] = CONCURRENCY
        data["databases"][0]["password_file"] = clickhouse.password_file
        if lane:
            data["databases"].append({**data["databases"][0], "name": LANE_DATABASE})
            data["sql_lab"] = {
                **data.get("sql_lab", {}),
                "lanes": {LANE: {"databases": [LANE_DATABASE], "concurrency": LANE_CONCURRENCY}},
            }
        path.write_text(json.dumps(data, indent=2) + "\n")
        self.settings = load_settings(path)
        self.settings_path = path
        self.base_url = f"http://127.0.0.1:{self.settings.web.port}/"
        self.username = self.settings.admin.username
        assert self.settings.admin.password_file is not None  # noqa: S101 - the demo sets it
        self.password = Path(self.settings.admin.password_file).read_text().strip()
        self.database_name = DEMO_DATABASE_NAME

    def _cli(self, *args: str) -> None:
        argv = [str(BIN / "superset-async"), *args, "--state-dir", str(self.state)]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> None:
        self._cli("up", "--detach", "--settings", str(self.settings_path), "--clickhouse", "none")

    def stop(self) -> None:
        self._cli("down")

    def _stack(self) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.state / "run" / "stack.json").read_text())
        return data

    def roles(self) -> dict[str, int]:
        stack = self._stack()
        processes = stack["processes"]
        assert isinstance(processes, dict)  # noqa: S101 - stack.json's shape
        found = {role: int(p["pgid"]) for role, p in processes.items()}
        found["supervisor"] = int(str(stack["supervisor_pid"]))
        return found

    def sessions(self) -> set[int]:
        return set(self.roles().values())
