"""stack.json: what a running stack consists of, for `down`, `status` and `verify` (format in docs/runner.md)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from ..errors import UsageError
from ..sql_lab_lanes import is_lane_role

FORMAT = 1
Status = Literal["starting", "ready", "stopping", "stopped", "failed"]
# What the supervisor does about a role: it runs; it waits `restart_at` to start it again; it gave up
# (start limit hit: too many exits in the interval); it keeps it stopped (`superset-async stop-role`).
Supervision = Literal["running", "restarting", "failed", "held"]
# Long-running roles in start order; `down` stops them in reverse.
ROLE_ORDER = ("postgresql", "redis", "clickhouse", "web", "worker", "beat", "flower")


def ordered_roles(roles: Iterable[str]) -> list[str]:
    """`roles` in start order: ROLE_ORDER's, with SQL Lab lane workers (worker-NAME) right after the worker."""

    def rank(role: str) -> tuple[int, str]:
        if role in ROLE_ORDER:
            return ROLE_ORDER.index(role), role
        return (ROLE_ORDER.index("worker") if is_lane_role(role) else len(ROLE_ORDER)), role

    return sorted(roles, key=rank)


@dataclass(frozen=True)
class ProcessState:
    """One long-running process; exit_code is set by the supervisor when it sees the process end.

    pid, start_ticks, exit_code and exited_at describe the current (latest) process of the role;
    restarts counts automatic restarts, last_exit_* the latest exit the supervisor saw of any of them.
    """

    pid: int
    pgid: int
    start_ticks: int
    started_at: float
    log: str
    argv: tuple[str, ...]
    exit_code: int | None = None
    exited_at: float | None = None
    supervision: Supervision = "running"
    restarts: int = 0
    last_exit_code: int | None = None
    last_exited_at: float | None = None
    restart_at: float | None = None  # wall clock, while supervision is "restarting"


@dataclass(frozen=True)
class ClickHouseState:
    database_name: str
    database: str
    http_port: int
    tcp_port: int


@dataclass(frozen=True)
class BootstrapState:
    exit_code: int
    seconds: float
    log: str
    summary: str


@dataclass(frozen=True)
class StackState:
    """The whole of stack.json."""

    state_dir: str
    settings: str
    config: str
    web_url: str
    admin_username: str
    admin_password_file: str | None
    supervisor_pid: int
    supervisor_start_ticks: int
    supervisor_log: str
    status: Status = "starting"
    message: str = ""
    clickhouse: ClickHouseState | None = None
    bootstrap: BootstrapState | None = None
    processes: dict[str, ProcessState] = field(default_factory=dict)
    format: int = FORMAT
    updated_at: float = 0.0

    def with_process(self, role: str, process: ProcessState) -> StackState:
        return replace(self, processes={**self.processes, role: process})


def make_private(state_dir: Path) -> None:
    """Keep everything the stack writes from here on to its owner, whatever the caller's umask.

    The state dir holds SQL Lab results (Redis AOF and RDB), the metadata DB and logs: it becomes
    0700, and the umask 077 of this process, inherited by every server it starts, makes each new
    directory 0700 and file 0600. A state dir owned by someone else is left as it is.
    """
    os.umask(0o077)
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if state_dir.stat().st_uid == os.geteuid():
        state_dir.chmod(0o700)


def stack_file(state_dir: Path) -> Path:
    return state_dir / "run" / "stack.json"


def write_state(state_dir: Path, state: StackState) -> None:
    """Replace stack.json atomically (readers never see half a file)."""
    path = stack_file(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = asdict(replace(state, updated_at=time.time()))
    tmp = path.with_name(f".stack.json.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def requests_dir(state_dir: Path) -> Path:
    """Where `stop-role`/`start-role` leave requests for the supervisor (one file each, name in time order)."""
    return state_dir / "run" / "requests"


def read_state(state_dir: Path) -> StackState | None:
    """The recorded stack, or None when this state dir has none."""
    path = stack_file(state_dir)
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise UsageError(f"{path}: unreadable stack state ({err}); remove it after checking no process runs") from err
    if data.get("format") != FORMAT:
        raise UsageError(f"{path}: format {data.get('format')!r}, expected {FORMAT}")
    data["processes"] = {
        role: ProcessState(**{**p, "argv": tuple(p["argv"])}) for role, p in data.get("processes", {}).items()
    }
    if data.get("clickhouse"):
        data["clickhouse"] = ClickHouseState(**data["clickhouse"])
    if data.get("bootstrap"):
        data["bootstrap"] = BootstrapState(**data["bootstrap"])
    return StackState(**data)
