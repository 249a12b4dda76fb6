"""`up`, `down` and `status` on a state directory: the runner's entry points below the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from .. import procfs
from ..errors import GlueError, UsageError
from .demo import demo_settings
from .processes import LEADER_STOP_SIGNALS, stop_groups, tail
from .state import ProcessState, StackState, ordered_roles, read_state, requests_dir, stack_file
from .supervisor import GRACE, Supervisor, UpOptions, describe_exit, layout, role_grace

DEFAULT_STATE_DIR = Path(".superset-async-demo")
# Exit codes of `status`, as LSB init scripts use them.
STATUS_RUNNING, STATUS_DEGRADED, STATUS_NOT_RUNNING = 0, 1, 3


def demo_settings_path(state_dir: Path, web_port: int, redis_port: int, clickhouse_port: int) -> Path:
    """The demo's settings.json in `state_dir`, generated with secrets on first use."""
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    return demo_settings(state_dir, web_port, redis_port, clickhouse_port)


def up(options: UpOptions, say: Callable[[str], None]) -> int:
    """Run the stack in the foreground, or with options.detached start it in the background and wait."""
    if not options.detached:
        return Supervisor(options, say).run()
    return _up_detached(options, say)


def _up_detached(options: UpOptions, say: Callable[[str], None]) -> int:
    existing = read_state(options.state_dir)
    if existing is not None and procfs.is_alive(existing.supervisor_pid, existing.supervisor_start_ticks):
        raise UsageError(
            f"a stack already runs from {options.state_dir} (supervisor pid {existing.supervisor_pid}); "
            f"stop it with: superset-async down --state-dir {options.state_dir}"
        )
    logs = layout(options.state_dir)["logs"]
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / "supervisor.log"
    offset = log.stat().st_size if log.exists() else 0
    pid = _fork_supervisor(options, log, say)
    child = _Forked(pid)
    ticks = procfs.start_ticks(child.pid)
    try:
        while True:
            offset = _follow(log, offset, say)
            state = _read_own_state(options.state_dir, child.pid)
            if state is not None and state.status == "ready":
                return 0
            code = child.poll()
            if code is not None or (state is not None and state.status == "failed"):
                child.wait(timeout=120)
                _follow(log, offset, say)
                say(f"[up] the stack did not start (supervisor {describe_exit(child.returncode)}); see {log}")
                return 1
            time.sleep(0.1)  # a read of stack.json: READY is reported within 0.1 s, not 0.3
    except KeyboardInterrupt:
        say("[up] interrupted; stopping the stack")
        if procfs.is_alive(child.pid, ticks):
            os.kill(child.pid, signal.SIGTERM)
        child.wait(timeout=180)
        _follow(log, offset, say)
        return 130


def _fork_supervisor(options: UpOptions, log: Path, say: Callable[[str], None]) -> int:
    """The detached supervisor: this process, forked, in a session of its own, writing to `log`.

    A fork, not a new interpreter: the supervisor starts with the glue already imported and the
    settings already checked (about 0.3 s sooner). The child never returns into the CLI: it exits
    with the supervisor's code and runs none of the parent's exit handlers.
    """
    sys.stdout.flush()  # what this process printed so far is not printed again by the child
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setsid()  # no terminal: a Ctrl-C meant for `up` never reaches the running stack
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(null)
        os.close(out)
        os.chdir(options.state_dir)
        code = Supervisor(options, say).run()
    except BaseException:  # whatever it is goes to the log, and the child exits
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


class _Forked:
    """The forked supervisor seen as subprocess.Popen sees a child (poll, wait, returncode)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.returncode


def _read_own_state(state_dir: Path, supervisor_pid: int) -> StackState | None:
    try:
        state = read_state(state_dir)
    except UsageError:
        return None  # being replaced right now
    return state if state is not None and state.supervisor_pid == supervisor_pid else None


def _follow(log: Path, offset: int, say: Callable[[str], None]) -> int:
    try:
        with log.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return offset
    complete = data[: data.rfind(b"\n") + 1]
    for line in complete.decode("utf-8", errors="replace").splitlines():
        say(line)
    return offset + len(complete)


def down(state_dir: Path, say: Callable[[str], None]) -> int:
    """Stop the stack recorded in state_dir: through its supervisor, then any group still there."""
    state = read_state(state_dir)
    if state is None:
        say(f"[down] no stack recorded in {state_dir} ({stack_file(state_dir)} does not exist)")
        return 0
    if procfs.is_alive(state.supervisor_pid, state.supervisor_start_ticks):
        say(f"[down] asking the supervisor (pid {state.supervisor_pid}) to stop the stack")
        os.kill(state.supervisor_pid, signal.SIGTERM)
        deadline = time.monotonic() + sum(GRACE.values()) + 30
        while procfs.is_alive(state.supervisor_pid, state.supervisor_start_ticks) and time.monotonic() < deadline:
            time.sleep(0.2)
        state = read_state(state_dir) or state
    # Whatever is left (supervisor killed, or it could not stop a group): stop the groups directly.
    leftover = []
    for role in reversed(ordered_roles(state.processes)):
        process = state.processes.get(role)
        if process is None:
            continue
        members = procfs.group_members(process.pgid)
        if members:
            leftover.append(role)
            say(f"[down] stopping {role} (process group {process.pgid}: pids {members})")
            signals = {process.pgid: LEADER_STOP_SIGNALS[role]} if role in LEADER_STOP_SIGNALS else None
            stop_groups([process.pgid], role_grace(role), leader_signals=signals)
    remaining = {role: procfs.group_members(p.pgid) for role, p in state.processes.items()}
    remaining = {role: pids for role, pids in remaining.items() if pids}
    if remaining:
        raise GlueError(f"processes still running after down: {remaining}")
    say(
        f"[down] stopped: no process of the stack in {state_dir} is left"
        + (f" (stopped directly: {', '.join(leftover)})" if leftover else "")
    )
    return 0


def role_states(state: StackState, supervisor_alive: bool | None = None) -> dict[str, str]:
    """Each role's state: "running", "restarting: ...", "failed: ...", "stopped: ...", "exited: ..." or "gone: ..."."""
    if supervisor_alive is None:
        supervisor_alive = procfs.is_alive(state.supervisor_pid, state.supervisor_start_ticks)
    out: dict[str, str] = {}
    for role in ordered_roles(state.processes):
        p = state.processes.get(role)
        if p is None:
            continue
        if procfs.is_alive(p.pid, p.start_ticks):
            out[role] = "running"
        elif supervisor_alive and p.supervision == "restarting":
            wait = max(0.0, (p.restart_at or 0.0) - time.time())
            out[role] = f"restarting: in {wait:.0f}s (restart {p.restarts + 1})"
        elif supervisor_alive and p.supervision == "failed":
            out[role] = f"failed: start limit hit, not restarted (superset-async start-role {role} once fixed)"
        elif supervisor_alive and p.supervision == "held":
            out[role] = f"stopped: by stop-role (superset-async start-role {role} starts it)"
        elif p.exit_code is not None:
            out[role] = f"exited: {describe_exit(p.exit_code)}"
        else:
            out[role] = "gone: not running (exit status unknown; the supervisor did not record it)"
    return out


def restart_summary(p: ProcessState) -> str:
    """ "restarts N, last exit: killed by SIGKILL at 2026-11-30 06:40:12 UTC" (empty before any exit)."""
    if p.last_exit_code is None or p.last_exited_at is None:
        return f"restarts {p.restarts}" if p.restarts else ""
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(p.last_exited_at))
    return f"restarts {p.restarts}, last exit: {describe_exit(p.last_exit_code)} at {when}"


def status(state_dir: Path, say: Callable[[str], None], as_json: bool = False) -> int:
    """Print the supervisor's and each role's state; exit 0 all running, 1 degraded, 3 not running."""
    state = read_state(state_dir)
    if state is None:
        say(
            json.dumps({"status": "absent", "state_dir": str(state_dir)})
            if as_json
            else f"no stack recorded in {state_dir}"
        )
        return STATUS_NOT_RUNNING
    supervisor_alive = procfs.is_alive(state.supervisor_pid, state.supervisor_start_ticks)
    roles = role_states(state, supervisor_alive)
    running = [r for r, s in roles.items() if s == "running"]
    if not running and not supervisor_alive:
        code = STATUS_NOT_RUNNING
    elif len(running) == len(roles) and supervisor_alive and state.status == "ready":
        code = STATUS_RUNNING
    else:
        code = STATUS_DEGRADED
    if as_json:
        say(
            json.dumps(
                {"code": code, "roles": roles, "supervisor_alive": supervisor_alive, "stack": asdict(state)},
                indent=2,
                sort_keys=True,
            )
        )
        return code
    say(
        f"stack in {state_dir}: {state.status}"
        + (f" ({state.message})" if state.message else "")
        + f"; supervisor pid {state.supervisor_pid} {'running' if supervisor_alive else 'not running'}"
    )
    say(f"web UI: {state.web_url}  admin: {state.admin_username} (password in {state.admin_password_file})")
    width = max([10, *map(len, roles)])  # a lane's worker-NAME may be longer than the fixed roles
    for role, text in roles.items():
        p = state.processes[role]
        line = f"  {role:<{width}} {text}"
        if text == "running":
            line += f" (pid {p.pid}, up {time.time() - p.started_at:.0f}s, log {p.log})"
        summary = restart_summary(p)
        say(line + (f"; {summary}" if summary else ""))
        if text != "running" and state.status not in ("stopped",):
            say(f"    last lines of {p.log}:")
            say("\n".join("      " + x for x in (tail(p.log, 10) or "(log is empty)").splitlines()))
    return code


def control_role(state_dir: Path, role: str, action: str, say: Callable[[str], None], timeout: float) -> int:
    """`stop-role` / `start-role`: ask the running supervisor, wait until stack.json shows it done."""
    state = read_state(state_dir)
    if state is None or not procfs.is_alive(state.supervisor_pid, state.supervisor_start_ticks):
        raise UsageError(f"no supervisor runs a stack from {state_dir}; start it with: superset-async up")
    if role not in state.processes:
        raise UsageError(f"role {role!r} is not part of the stack in {state_dir} (roles: {', '.join(state.processes)})")
    directory = requests_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns():020d}-{os.getpid()}"
    tmp = directory / f".{name}.tmp"
    tmp.write_text(json.dumps({"role": role, "action": action}), encoding="utf-8")
    tmp.replace(directory / f"{name}.json")
    before = state.processes[role]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        current = _read_own_state(state_dir, state.supervisor_pid)
        if current is None or role not in current.processes:
            continue
        p = current.processes[role]
        alive = procfs.is_alive(p.pid, p.start_ticks)
        if action == "stop" and p.supervision == "held" and not procfs.group_members(p.pgid):
            say(f"[{action}-role] {role}: stopped; the supervisor keeps it stopped until start-role")
            return 0
        if action == "start" and p.supervision == "running" and alive:
            started = "already running" if p.pid == before.pid else "started"
            say(f"[{action}-role] {role}: {started} (pid {p.pid})")
            return 0
        if action == "start" and p.pid != before.pid and p.supervision in ("restarting", "failed"):
            raise GlueError(
                f"{role} started (pid {p.pid}) but exited: {describe_exit(p.exit_code)}; "
                + ("start limit hit, not restarted" if p.supervision == "failed" else "the supervisor restarts it")
                + "; see superset-async status"
            )
        if not procfs.is_alive(state.supervisor_pid, state.supervisor_start_ticks):
            raise GlueError(f"the supervisor (pid {state.supervisor_pid}) ended before the {action}-role of {role}")
    raise GlueError(f"{role} not {'stopped' if action == 'stop' else 'running'} after {timeout:.0f}s; see status")


def resolve_state_dir(state_dir: Path | None, settings_path: Path | None) -> Path:
    """--state-dir, else the settings' state_dir, else the demo default (./.superset-async-demo)."""
    if state_dir is not None:
        return state_dir.resolve()
    if settings_path is not None:
        from ..loading import load_settings  # noqa: PLC0415

        return Path(load_settings(settings_path).state_dir)
    return DEFAULT_STATE_DIR.resolve()
