"""What a stack's processes cost, read from /proc: CPU time (user + system) and memory (PSS).

A stack is a set of sessions: every role the benchmark or the runner starts is a session leader, so
the session id groups a role with its children (gunicorn's workers, Celery's pool processes).
Used by bench/startup_memory.py; nothing here depends on which layout started the processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    session: int
    cpu_seconds: float  # user + system, plus the children it waited for (cutime + cstime)


def _stat(pid: int) -> ProcStat | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields start after the last ')'.
    fields = text[text.rfind(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ProcStat(pid, int(fields[3]), (utime + stime + cutime + cstime) / TICK)


def processes(sessions: set[int]) -> list[ProcStat]:
    """Every live process whose session is one of `sessions`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat.session in sessions:
                found.append(stat)
    return found


def cpu_seconds(sessions: set[int]) -> float:
    """CPU time spent so far by the live processes of `sessions` and the children they reaped.

    A child that exited and was waited for counts once, in its parent's cutime/cstime; a live child
    counts in its own utime/stime, never in its parent's.
    """
    return sum(p.cpu_seconds for p in processes(sessions))


def pss_mib(pid: int) -> float:
    """Proportional set size of one process: shared pages divided among the processes sharing them."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def pss_by_role(roles: dict[str, int]) -> dict[str, float]:
    """PSS in MiB of each role: the sum over the processes of its session."""
    members: dict[int, list[int]] = {}
    for p in processes(set(roles.values())):
        members.setdefault(p.session, []).append(p.pid)
    return {role: sum(pss_mib(pid) for pid in members.get(session, [])) for role, session in roles.items()}
