"""Linux's /proc, read: process identity (enough to stop process groups without psutil), a process's
command line and environment. A low module: the runner and verify both read processes through it.

A pid alone can be reused after its process ends, so every recorded process is identified by
(pid, start time in clock ticks since boot), field 22 of /proc/PID/stat.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/PID/stat the runner uses."""

    pid: int
    state: str
    pgid: int
    start_ticks: int

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")


def read_stat(pid: int) -> ProcStat | None:
    """The process's stat, or None when there is no such process."""
    try:
        raw = (PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces or parentheses.
    rest = raw[raw.rindex(")") + 2 :].split()
    return ProcStat(pid=pid, state=rest[0], pgid=int(rest[2]), start_ticks=int(rest[19]))


def environ(pid: int) -> dict[str, str] | None:
    """The environment a process was started with, or None when it cannot be read."""
    try:
        raw = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    pairs = (entry.split(b"=", 1) for entry in raw.split(b"\0") if b"=" in entry)
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, value in pairs}


def cmdline(pid: int) -> list[str]:
    """A process's argv, or [] when it cannot be read (gone, or another user's)."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")


def pids() -> list[int]:
    """Every process id /proc lists now."""
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]


def start_ticks(pid: int) -> int | None:
    stat = read_stat(pid)
    return stat.start_ticks if stat else None


def is_alive(pid: int, ticks: int | None = None) -> bool:
    """True when `pid` runs (not a zombie) and, if `ticks` is given, is the same process as recorded."""
    stat = read_stat(pid)
    if stat is None or stat.zombie:
        return False
    return ticks is None or stat.start_ticks == ticks


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group `pgid`."""
    members = []
    for pid in pids():
        stat = read_stat(pid)
        if stat is not None and stat.pgid == pgid and not stat.zombie:
            members.append(stat.pid)
    return sorted(members)


def signal_group(pgid: int, signum: int) -> bool:
    """Send `signum` to a process group; False when the group no longer exists."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True
