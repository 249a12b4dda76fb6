"""Start a command as its own process group with its output in a log file; stop the whole group.

Each process is a session leader (start_new_session), so a Ctrl-C at the terminal reaches only the
runner, which then stops the groups in reverse dependency order, and a stop reaches every child
(gunicorn's workers, Celery's pool processes) without leaving orphans.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import procfs
from .state import ProcessState


def tail(path: str | Path, lines: int = 20) -> str:
    """The last `lines` lines of a log file (empty when it does not exist)."""
    try:
        with Path(path).open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            data = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


# How a role is asked to stop when its group must not get SIGTERM: PostgreSQL's postmaster shuts down
# fast (rolls back, checkpoints, ends its children itself) on SIGINT, while SIGTERM is its "smart"
# shutdown that waits for every client; its children read a signal of their own as a crash.
LEADER_STOP_SIGNALS = {"postgresql": signal.SIGINT}


@dataclass(frozen=True)
class Identity:
    """The user and group a role runs as when the runner is root and the role must not be (PostgreSQL)."""

    uid: int
    gid: int


class ManagedProcess:
    """A child process in its own group, started by this runner."""

    def __init__(
        self,
        role: str,
        argv: Sequence[str],
        log: Path,
        env: Mapping[str, str],
        cwd: Path,
        *,
        identity: Identity | None = None,
    ) -> None:
        self.role = role
        self.argv = tuple(argv)
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as handle:
            handle.write(f"\n=== superset-async up: {role} started at {time.ctime()}\n".encode())
            handle.flush()
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
                # Dropped in the child after the fork, before exec: no supplementary group of the runner kept.
                user=identity.uid if identity else None,
                group=identity.gid if identity else None,
                extra_groups=[] if identity else None,
            )
        self.started_at = time.time()
        self.start_ticks = procfs.start_ticks(self.popen.pid) or 0

    @property
    def pid(self) -> int:
        return self.popen.pid

    def state(self) -> ProcessState:
        """This process as stack.json records it (its own process group: pgid == pid)."""
        return ProcessState(self.pid, self.pid, self.start_ticks, self.started_at, str(self.log), self.argv)

    def exit_code(self) -> int | None:
        """None while running; else the exit status (negative: killed by that signal)."""
        return self.popen.poll()

    def wait(self, seconds: float) -> bool:
        """Reap the leader within `seconds`; True when it has exited."""
        try:
            self.popen.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        return True


def stop_groups(
    pgids: Sequence[int],
    grace_seconds: float,
    reap: Callable[[], None] = lambda: None,
    leader_signals: Mapping[int, int] | None = None,
) -> list[int]:
    """Stop every process of the groups `pgids` together: SIGTERM, then SIGKILL after the grace period.

    A group in `leader_signals` (pgid -> signal; see LEADER_STOP_SIGNALS) gets that signal, sent to its
    leader only, instead of SIGTERM. Returns the pids that had to be killed. `reap` is called while
    waiting so that the caller can collect its own children's exit status (a zombie leader keeps its
    group id in use).
    """
    for pgid in pgids:
        if leader_signals and pgid in leader_signals:
            # A pid is never reused while it names a group with members: the leader is ours, or gone.
            with contextlib.suppress(ProcessLookupError):
                if procfs.group_members(pgid):
                    os.kill(pgid, leader_signals[pgid])
        else:
            procfs.signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        reap()
        if not any(procfs.group_members(pgid) for pgid in pgids):
            return []
        time.sleep(0.1)
    killed = [pid for pgid in pgids for pid in procfs.group_members(pgid)]
    for pgid in pgids:
        procfs.signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        reap()
        if not any(procfs.group_members(pgid) for pgid in pgids):
            break
        time.sleep(0.05)
    return killed
