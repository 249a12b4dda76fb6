"""The supervisor behind `superset-async up`: start in dependency order, watch, stop everything.

Order: PostgreSQL (metadata_db.local_postgresql) -> Redis -> ClickHouse (when the settings declare a
loopback ClickHouse) -> bootstrap ->
web, worker and beat (command lines from commands.role_command, the NixOS module's source too).
Once the stack is ready, a role that exits is reported with the tail of its log, the rest of its
process group is stopped, and it is started again after a delay, as systemd's `Restart=always` does
for the module's units: 1 s, doubling up to 30 s; a role that exits `burst` times within `interval`
seconds is marked failed and left stopped (systemd's StartLimitBurst/StartLimitIntervalSec).
`superset-async stop-role` keeps a role stopped on purpose, `start-role` starts it again. Ctrl-C,
SIGTERM or `superset-async down` stop every process group in reverse order, with no restart.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Literal

from .. import procfs
from ..bootstrap.fast_path import unchanged_report
from ..bootstrap.result import BootstrapReport
from ..commands import Role, lane_command, role_command, role_environment
from ..errors import GlueError
from ..files import write_atomically
from ..flower_http import flower_healthy, flower_host, flower_url
from ..loading import load_settings
from ..render import render_config
from ..render_flower import flower_conf_path, render_flower_config
from ..sd_notify import NOTIFY_SOCKET, NotifyListener
from ..settings import Database, Settings
from ..sql_lab_lanes import is_lane_role
from ..web_address import web_url
from .clickhouse_server import ClickHousePlan, local_clickhouse_database, plan_clickhouse
from .demo import clickhouse_ping, seed_demo
from .postgresql_server import ensure_database, initdb_if_needed, plan_postgresql
from .postgresql_server import ping as postgresql_ping
from .processes import LEADER_STOP_SIGNALS, Identity, ManagedProcess, stop_groups, tail
from .readiness import check_port_free, web_health
from .redis_server import ping as redis_ping
from .redis_server import plan_redis
from .state import (
    BootstrapState,
    ClickHouseState,
    StackState,
    Supervision,
    read_state,
    requests_dir,
    write_state,
)

ClickHouseMode = Literal["auto", "none"]
# Seconds a role gets between SIGTERM and SIGKILL; Celery finishes running tasks first (warm shutdown).
PROGRESS_EVERY = 5.0  # seconds between "still waiting" lines
GRACE = {
    "web": 20.0,
    "worker": 30.0,
    "beat": 10.0,
    "flower": 10.0,
    "clickhouse": 30.0,
    "redis": 15.0,
    "postgresql": 30.0,
}


def role_grace(role: str) -> float:
    """A role's seconds between SIGTERM and SIGKILL; a SQL Lab lane's worker (worker-NAME) gets the worker's."""
    return GRACE["worker"] if is_lane_role(role) else GRACE.get(role, 15.0)


LEFTOVER_GRACE = 5.0  # seconds the rest of a dead leader's group gets between SIGTERM and SIGKILL
TICK = 0.5  # seconds between two looks at the processes and the requests once the stack is ready
READY_POLL = 0.1  # seconds between two readiness probes while starting (each is a local request)
NOTIFY_WAIT = 0.5  # seconds one look at a notify socket waits for READY=1 (it returns at once when it comes)


@dataclass(frozen=True)
class RestartPolicy:
    """systemd's Restart=always with a doubling RestartSec, and StartLimitBurst/StartLimitIntervalSec."""

    delay: float = 1.0
    max_delay: float = 30.0
    burst: int = 6
    interval: float = 120.0

    def delay_after(self, recent_exits: int) -> float:
        """The wait before the next start, when the role exited `recent_exits` times within the interval."""
        return float(min(self.delay * 2 ** max(0, recent_exits - 1), self.max_delay))


@dataclass
class RoleRun:
    """How to (re)start one role and what the supervisor is doing about it."""

    argv: tuple[str, ...]
    env: dict[str, str]
    identity: Identity | None = None  # the user it runs as, when not the runner's (PostgreSQL as root)
    mode: Supervision = "running"
    exits: list[float] = field(default_factory=list)  # monotonic times of exits within the policy's interval
    restart_at: float | None = None  # monotonic


class StartupError(GlueError):
    """A component did not become ready; the message names it and carries its log's tail."""


class StopRequested(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Ctrl-C, SIGTERM or SIGHUP arrived while starting."""


@dataclass(frozen=True)
class UpOptions:
    """What `up` was asked for, resolved to absolute paths."""

    settings_path: Path
    state_dir: Path
    clickhouse: ClickHouseMode = "auto"
    clickhouse_spare_port: int | None = None
    timeout: float = 180.0
    detached: bool = False
    restart: RestartPolicy = RestartPolicy()


def layout(state_dir: Path) -> dict[str, Path]:
    """Where the runner keeps things under the state dir (documented in docs/runner.md)."""
    return {
        "run": state_dir / "run",
        "logs": state_dir / "logs",
        "config": state_dir / "superset_config.py",
        "redis": state_dir / "redis",
        "clickhouse": state_dir / "clickhouse",
    }


def bin_dir() -> Path:
    return Path(sys.executable).parent  # gunicorn, celery and superset-async live beside this interpreter


def glue_command() -> list[str]:
    script = bin_dir() / "superset-async"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from superset_async_glue.cli import main; main()"]


class Supervisor:
    """One stack's processes, from start to stop."""

    def __init__(self, options: UpOptions, say: Callable[[str], None]) -> None:
        self.options = options
        self._say = say
        self.settings: Settings = load_settings(options.settings_path)
        self.paths = layout(options.state_dir)
        self.processes: dict[str, ManagedProcess] = {}
        self.runs: dict[str, RoleRun] = {}
        self.oneshot: subprocess.Popen[str] | None = None
        self.stop_signal: int | None = None
        self.state: StackState | None = None

    def say(self, line: str) -> None:
        """Progress output; a closed terminal (SIGHUP, a dead pipe) must not stop the shutdown."""
        with contextlib.suppress(OSError):
            self._say(line)

    # -- signals ---------------------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum
            if self.oneshot is not None and self.oneshot.poll() is None:
                procfs.signal_group(self.oneshot.pid, signal.SIGTERM)

    def _check_stop(self) -> None:
        if self.stop_signal is not None:
            raise StopRequested

    def _sleep(self, seconds: float) -> None:
        time.sleep(seconds)
        self._check_stop()

    # -- state -----------------------------------------------------------------------------------
    def _save(self, **changes: object) -> None:
        assert self.state is not None  # noqa: S101 - set in run() before any save
        self.state = replace(self.state, **changes)  # type: ignore[arg-type]
        write_state(self.options.state_dir, self.state)

    def _record(self, role: str, process: ManagedProcess) -> None:
        assert self.state is not None  # noqa: S101
        self.state = self.state.with_process(role, process.state())
        write_state(self.options.state_dir, self.state)

    # -- main ------------------------------------------------------------------------------------
    def run(self) -> int:
        """Start, report readiness, watch until asked to stop, stop. Returns the exit code."""
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        self._prepare()
        code = 0
        try:
            self._start_all()
            self._save(status="ready")
            self._banner()
            while True:
                self._handle_requests()
                self._watch()
                self._sleep(TICK)
        except StopRequested:
            self.say(f"[up] {signal.Signals(self.stop_signal or signal.SIGTERM).name} received; stopping")
        except GlueError as err:
            code = 1
            self.say(f"[up] FAILED: {err}")
            self._save(status="failed", message=str(err).splitlines()[0])
        finally:
            self._stop_all()
        return code

    def _prepare(self) -> None:
        existing = read_state(self.options.state_dir)
        if existing is not None:
            alive = [role for role, p in existing.processes.items() if procfs.is_alive(p.pid, p.start_ticks)]
            if procfs.is_alive(existing.supervisor_pid, existing.supervisor_start_ticks) or alive:
                raise GlueError(
                    f"a stack already runs from {self.options.state_dir} (supervisor pid {existing.supervisor_pid}"
                    f"{', roles ' + ', '.join(alive) if alive else ''}); stop it with: superset-async down "
                    f"--state-dir {self.options.state_dir}"
                )
        for name in ("run", "logs"):
            self.paths[name].mkdir(parents=True, exist_ok=True)
        self.paths["run"].chmod(0o700)
        s = self.settings
        if s.redis.sentinel is None:  # with Sentinel, Redis is external: the runner starts none
            check_port_free(s.redis.port, "redis.port")
        check_port_free(s.web.port, "web.port", "127.0.0.1" if s.web.bind in ("localhost", "0.0.0.0") else s.web.bind)  # noqa: S104
        write_atomically(self.paths["config"], render_config(s))
        if s.flower.enabled:
            check_port_free(s.flower.port, "flower.port", flower_host(s))
            write_atomically(flower_conf_path(self.paths["config"]), render_flower_config(s))
        me = os.getpid()
        self.state = StackState(
            state_dir=str(self.options.state_dir),
            settings=str(self.options.settings_path),
            config=str(self.paths["config"]),
            web_url=web_url(s),
            admin_username=s.admin.username,
            admin_password_file=s.admin.password_file,
            supervisor_pid=me,
            supervisor_start_ticks=procfs.start_ticks(me) or 0,
            supervisor_log=str(self.paths["logs"] / "supervisor.log") if self.options.detached else "",
        )
        write_state(self.options.state_dir, self.state)

    def _start_all(self) -> None:
        s = self.settings
        if s.metadata_db.local_postgresql:
            self._start_postgresql()
        if s.redis.sentinel is not None:
            unchanged = self._bootstrap_fast_path()
            self._wait_external_redis()
        else:
            plan = plan_redis(s, self.paths["run"], self.paths["redis"])
            where = f"{plan.host}:{plan.port}" + (f" and {plan.unix_socket}" if plan.unix_socket else "")
            self._start("redis", plan.argv, dict(os.environ))
            unchanged = self._bootstrap_fast_path()  # while Redis starts
            self._wait("redis", f"PING on {where}", lambda: redis_ping(s), 30)
        declared = local_clickhouse_database(s) if self.options.clickhouse == "auto" else None
        if declared is not None:
            self._start_clickhouse(declared)
        self._bootstrap(unchanged)
        bins = bin_dir()
        roles: tuple[Role, ...] = ("web", "worker", "beat") if s.beat.enabled else ("web", "worker")
        commands = [role_command(role, s, self.paths["config"], bins) for role in roles]
        # One worker per SQL Lab lane (sql_lab.lanes), role worker-NAME: started, awaited and supervised as the worker.
        commands += [lane_command(lane, s, self.paths["config"], bins) for lane in sorted(s.sql_lab.lanes)]
        listeners: dict[str, NotifyListener] = {}
        try:
            for command in commands:
                role = command.role
                env = {**os.environ, **command.env}
                if tells_ready(role):  # READY=1 from its main process (worker_app.py), as systemd's Type=notify
                    listeners[role] = NotifyListener(self.paths["run"] / f"{role}.notify")
                    env[NOTIFY_SOCKET] = listeners[role].name
                self._start(role, command.argv, env)
            self._wait("web", f"GET {web_url(s)}health -> 200", lambda: web_health(s), self.options.timeout)
            for name, listener in listeners.items():
                told = functools.partial(listener.ready_from, self.processes[name].pid, NOTIFY_WAIT)
                self._wait(name, f"READY=1 on {listener.name}", told, self.options.timeout)
        finally:
            for listener in listeners.values():
                listener.close()  # a restarted worker's READY=1 then finds nobody: it does not wait for it
        if "beat" in self.processes:
            self._wait("beat", "process running", lambda: True, 5)
        if s.flower.enabled:
            # Once the worker answers: Flower inspects the workers when it starts (queues, registered tasks).
            command = role_command("flower", s, self.paths["config"], bins)
            self._start("flower", command.argv, {**os.environ, **command.env})
            self._wait("flower", f"GET {flower_url(s)}healthcheck -> 200", lambda: flower_healthy(s), 60)

    def _start_postgresql(self) -> None:
        plan = plan_postgresql(self.settings)
        log = self.paths["logs"] / "postgresql.log"
        if initdb_if_needed(plan, log):
            self.say(f"[up] postgresql: created the cluster {plan.data_dir} (initdb; peer authentication, no password)")
        self._start("postgresql", plan.argv, plan.env, plan.identity)
        self._wait("postgresql", f"connection over the socket in {plan.directory}", lambda: postgresql_ping(plan), 60)
        if ensure_database(plan):
            self.say("[up] postgresql: created the database superset")

    def _start_clickhouse(self, declared: Database) -> None:
        name = declared.name
        spare = self.options.clickhouse_spare_port or _free_port()
        plan: ClickHousePlan = plan_clickhouse(
            declared, self.paths["run"], self.paths["clickhouse"], self.paths["logs"], spare
        )
        check_port_free(plan.http_port, f"databases '{name}' HTTP port")
        check_port_free(plan.tcp_port, "ClickHouse native TCP port")
        self._start("clickhouse", plan.argv, dict(os.environ))
        self._wait("clickhouse", f"GET {plan.url}/ping", lambda: clickhouse_ping(plan), 60)
        self.say(f"[up] clickhouse: {seed_demo(plan)}")
        self._save(clickhouse=ClickHouseState(name, plan.database, plan.http_port, plan.tcp_port))

    def _start(self, role: str, argv: tuple[str, ...], env: dict[str, str], identity: Identity | None = None) -> None:
        self._check_stop()
        log = self.paths["logs"] / f"{role}.log"
        self.processes[role] = ManagedProcess(role, argv, log, env, self.options.state_dir, identity=identity)
        self.runs[role] = RoleRun(tuple(argv), dict(env), identity)
        self._record(role, self.processes[role])
        self.say(f"[up] {role}: started (pid {self.processes[role].pid}, log {log})")

    def _wait_external_redis(self, timeout: float = 30) -> None:
        """redis.sentinel: Redis runs elsewhere, as an external ClickHouse does; wait until its master answers."""
        sentinel = self.settings.redis.sentinel
        assert sentinel is not None  # noqa: S101 - called only with Sentinel
        started = time.monotonic()
        while not redis_ping(self.settings):
            if time.monotonic() - started > timeout:
                raise StartupError(
                    f"no Redis master answered PING within {timeout:.0f}s through the Sentinels "
                    f"{', '.join(sentinel.sentinels)} (master {sentinel.master_name!r}); with redis.sentinel the "
                    "runner starts no Redis: start the Sentinels and their Redis, or check redis.sentinel and the "
                    "password files (superset-async verify names the master the Sentinels report)"
                )
            self._sleep(0.25)
        self.say(f"[up] redis: external, master {sentinel.master_name!r} via Sentinel answers PING")

    def _wait(self, role: str, what: str, ready: Callable[[], bool], timeout: float) -> None:
        """Poll `ready` until it holds; fail at once when any started process dies, or at the timeout."""
        started = time.monotonic()
        process = self.processes[role]
        next_note = PROGRESS_EVERY
        while True:
            for name, other in self.processes.items():
                if other.exit_code() is not None:
                    raise StartupError(self._death_report(name, "while starting"))
            if ready():
                break
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                raise StartupError(
                    f"{role} not ready after {timeout:.0f}s ({what}); last lines of {process.log}:\n"
                    + _indent(tail(process.log))
                )
            if elapsed >= next_note:
                self.say(f"[up] {role}: waiting for {what} ({elapsed:.0f}s of at most {timeout:.0f}s)")
                next_note += PROGRESS_EVERY
            self._sleep(READY_POLL)
        self.say(f"[up] {role}: ready ({what}) after {time.monotonic() - started:.1f}s")

    def _bootstrap_fast_path(self) -> tuple[BootstrapReport, float] | None:
        """Bootstrap's fast path checked here, without the bootstrap command's interpreter (fast_path.py)."""
        started = time.monotonic()
        report = unchanged_report(self.settings, self.paths["config"])
        return None if report is None else (report, time.monotonic() - started)

    def _bootstrap_unchanged(self, report: BootstrapReport, seconds: float) -> None:
        """Report and record a fast path as `superset-async bootstrap` would have (its lines, its log)."""
        log = self.paths["logs"] / "bootstrap.log"
        lines = [f"bootstrap: {result.line()}" for result in report.steps]
        lines.append(f"{report.summary()} in {seconds:.1f}s (checked by the runner)")
        with log.open("a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))
        for line in lines:
            self.say(f"[up] {line}")
        self._save(bootstrap=BootstrapState(0, round(seconds, 1), str(log), lines[-1]))

    def _bootstrap(self, unchanged: tuple[BootstrapReport, float] | None) -> None:
        if unchanged is not None:
            self._bootstrap_unchanged(*unchanged)
            return
        log = self.paths["logs"] / "bootstrap.log"
        argv = [
            *glue_command(),
            "bootstrap",
            "--settings",
            str(self.options.settings_path),
            "--config",
            str(self.paths["config"]),
        ]
        env = {**os.environ, **role_environment(self.settings, self.paths["config"])}
        self.say("[up] bootstrap: running (migrations, init, admin, databases)")
        started = time.monotonic()
        summary = ""
        with log.open("ab") as log_handle:
            self.oneshot = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log_handle,
                text=True,
                env=env,
                cwd=self.options.state_dir,
                start_new_session=True,
            )
            assert self.oneshot.stdout is not None  # noqa: S101 - stdout=PIPE
            for line in self.oneshot.stdout:
                log_handle.write(line.encode())
                log_handle.flush()
                summary = line.strip()
                self.say(f"[up] {summary}")
            code = self.oneshot.wait()
            self.oneshot = None
        self._check_stop()
        seconds = time.monotonic() - started
        self._save(bootstrap=BootstrapState(code, round(seconds, 1), str(log), summary))
        if code == 1:
            self.say(f"[up] bootstrap: WARNING: a step failed (see above and {log}); starting the rest anyway")
            self._save(message=summary)
        elif code != 0:
            raise StartupError(f"bootstrap exited with code {code}; last lines of {log}:\n" + _indent(tail(log)))

    # -- running ---------------------------------------------------------------------------------
    def _banner(self) -> None:
        s = self.settings
        stop = (
            f"superset-async down --state-dir {self.options.state_dir}"
            if self.options.detached
            else "Ctrl-C (or superset-async down)"
        )
        # The three things a person does next, in order.
        self.say(f"[up] READY: Superset at {web_url(s)}")
        self.say(f"[up]   1. open {web_url(s)} and log in as '{s.admin.username}'")
        self.say(f"[up]   2. the password is in {s.admin.password_file}")
        self.say(f"[up]   3. check every piece: superset-async verify --state-dir {self.options.state_dir}")
        if s.flower.enabled:
            self.say(f"[up] Flower at {flower_url(s)} (Prometheus: {flower_url(s)}metrics; docs/metrics.md)")
        self.say(f"[up] state and logs in {self.options.state_dir}; stop with {stop}")

    def _watch(self) -> None:
        """Restart what exited (after its delay), or give up on a role past the start limit."""
        for role, process in list(self.processes.items()):
            run = self.runs[role]
            if run.mode == "running" and process.exit_code() is not None:
                self._on_exit(role)
            elif run.mode == "restarting" and run.restart_at is not None and time.monotonic() >= run.restart_at:
                self._check_stop()  # never start anything once a stop was asked for
                self._restart(role, counted=True)

    def _on_exit(self, role: str) -> None:
        process, run, policy = self.processes[role], self.runs[role], self.options.restart
        code, exited_at, now = process.exit_code(), time.time(), time.monotonic()
        # As systemd's KillMode=control-group: what the leader left behind (gunicorn's workers holding
        # the port, Celery's pool children) is stopped before the role starts again.
        stop_groups([process.pid], LEFTOVER_GRACE, functools.partial(_reap, process))
        run.exits = [t for t in run.exits if now - t < policy.interval] + [now]
        restart_at: float | None = None
        if len(run.exits) >= policy.burst:
            run.mode, run.restart_at = "failed", None
            action = (
                f"{len(run.exits)} exits within {policy.interval:.0f}s: start limit hit, not restarted "
                f"(fix it, then: superset-async start-role {role} --state-dir {self.options.state_dir})"
            )
        else:
            delay = policy.delay_after(len(run.exits))
            run.mode, run.restart_at = "restarting", now + delay
            restart_at = exited_at + delay
            assert self.state is not None  # noqa: S101
            action = f"restarting in {delay:.0f}s (restart {self.state.processes[role].restarts + 1})"
        self.say("[up] " + self._death_report(role, "while the stack was running", action))
        self._record_exit(role, code, exited_at, run.mode, restart_at)

    def _record_exit(
        self, role: str, code: int | None, exited_at: float, mode: Supervision, restart_at: float | None
    ) -> None:
        assert self.state is not None  # noqa: S101
        recorded = replace(
            self.state.processes[role],
            exit_code=code,
            exited_at=exited_at,
            last_exit_code=code,
            last_exited_at=exited_at,
            supervision=mode,
            restart_at=restart_at,
        )
        self.state = self.state.with_process(role, recorded)
        write_state(self.options.state_dir, self.state)

    def _restart(self, role: str, counted: bool) -> None:
        """Start the role again with exactly the argv and environment of its first start."""
        assert self.state is not None  # noqa: S101
        run, before = self.runs[role], self.state.processes[role]
        log = self.paths["logs"] / f"{role}.log"
        process = ManagedProcess(role, run.argv, log, run.env, self.options.state_dir, identity=run.identity)
        self.processes[role] = process
        run.mode, run.restart_at = "running", None
        restarts = before.restarts + 1 if counted else before.restarts
        self.state = self.state.with_process(
            role,
            replace(
                process.state(),
                restarts=restarts,
                last_exit_code=before.last_exit_code,
                last_exited_at=before.last_exited_at,
            ),
        )
        write_state(self.options.state_dir, self.state)
        how = f"restarted (restart {restarts})" if counted else "started again (start-role)"
        self.say(f"[up] {role}: {how}, pid {process.pid}")

    # -- stop-role / start-role ------------------------------------------------------------------
    def _handle_requests(self) -> None:
        """Carry out the requests `superset-async stop-role`/`start-role` left, oldest first."""
        directory = requests_dir(self.options.state_dir)
        for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
            try:
                request = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # being written (the CLI renames a complete file into place) or gone
            finally:
                path.unlink(missing_ok=True)
            role, action = str(request.get("role")), request.get("action")
            if role not in self.processes:
                self.say(f"[up] ignored {action} request for {role!r}: no such role in this stack")
            elif action == "stop":
                self._hold(role)
            elif action == "start":
                self._release(role)

    def _hold(self, role: str) -> None:
        process, run = self.processes[role], self.runs[role]
        run.mode, run.restart_at = "held", None
        if process.exit_code() is None:
            self.say(f"[up] {role}: stopping (stop-role); it stays stopped until start-role")
            stop_groups([process.pid], role_grace(role), functools.partial(_reap, process), _leader_signals(process))
        else:
            stop_groups([process.pid], LEFTOVER_GRACE, functools.partial(_reap, process))
        assert self.state is not None  # noqa: S101
        before = self.state.processes[role]
        code = process.exit_code()
        exited_at = before.exited_at if before.exit_code is not None and before.exited_at else time.time()
        self._record_exit(role, code, exited_at, "held", None)
        self.say(f"[up] {role}: stopped on request ({describe_exit(code)})")

    def _release(self, role: str) -> None:
        process, run = self.processes[role], self.runs[role]
        if run.mode == "running" and process.exit_code() is None:
            self.say(f"[up] {role}: start-role: already running (pid {process.pid})")
            return
        run.exits = []  # as `systemctl start` after a failure: a fresh start limit
        self._restart(role, counted=False)

    def _death_report(self, role: str, when: str, action: str = "") -> str:
        process = self.processes[role]
        return (
            f"{role} (pid {process.pid}) exited {when}: {describe_exit(process.exit_code())}; "
            + (f"{action}; " if action else "")
            + f"last lines of {process.log}:\n"
            + _indent(tail(process.log))
        )

    # -- stopping --------------------------------------------------------------------------------
    def _stop_all(self) -> None:
        """Stop in reverse dependency order, every group, ignoring further signals meanwhile."""
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        oneshot = self.oneshot
        if oneshot is not None and oneshot.poll() is None:
            stop_groups([oneshot.pid], 10, reap=lambda: _reap(oneshot))
        if self.state is not None and self.state.status != "failed":
            self._save(status="stopping")
        lanes = tuple(role for role in self.processes if is_lane_role(role))
        for group in (("web", "worker", *lanes, "beat", "flower"), ("clickhouse",), ("redis",), ("postgresql",)):
            present = [self.processes[r] for r in group if r in self.processes]
            if not present:
                continue
            self.say(f"[up] stopping {', '.join(p.role for p in present)}")
            grace = max(role_grace(p.role) for p in present)

            killed = stop_groups(
                [p.pid for p in present], grace, functools.partial(_reap, *present), _leader_signals(*present)
            )
            if killed:
                self.say(f"[up] killed with SIGKILL after {grace:.0f}s: pids {killed}")
        if self.state is not None:
            final = self.state.status if self.state.status == "failed" else "stopped"
            processes = {
                role: replace(
                    p,
                    exit_code=self.processes[role].exit_code() if role in self.processes else p.exit_code,
                    exited_at=p.exited_at or time.time(),
                )
                for role, p in self.state.processes.items()
            }
            self._save(status=final, processes=processes)
        left = [pid for p in self.processes.values() for pid in procfs.group_members(p.pid)]
        if left:
            self.say(f"[up] stopped, but these processes of the stack are still there: {left}")
        else:
            self.say("[up] stopped; no process of this stack is left")


def tells_ready(role: str) -> bool:
    """The roles that run worker_app (the worker, and a lane's `worker-NAME`): they send READY=1 when ready."""
    return role == "worker" or is_lane_role(role)


def _leader_signals(*processes: ManagedProcess) -> dict[int, int]:
    """pgid -> the signal its leader alone gets, for the roles stopped that way (PostgreSQL)."""
    return {p.pid: LEADER_STOP_SIGNALS[p.role] for p in processes if p.role in LEADER_STOP_SIGNALS}


def _reap(*processes: ManagedProcess | subprocess.Popen[str]) -> None:
    for process in processes:
        process.poll() if isinstance(process, subprocess.Popen) else process.exit_code()


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines()) or "    (log is empty)"


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
