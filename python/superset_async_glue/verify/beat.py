"""Check 5: exactly one Celery beat for this stack, and a schedule that holds the reports tasks.

Beat answers no control command, so it is found as a process: a `celery ... beat` whose
SUPERSET_CONFIG_PATH is this stack's config (same file or same bytes: NixOS runs the store copy of
/etc/superset-async/superset_config.py) or whose schedule file lies in the state directory. Only this
host's processes are visible: on a multi-host stack, make sure no other host also runs beat.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..commands import beat_schedule_path
from ..runner import procfs
from . import diagnosis as dx
from .model import Outcome, failed, passed, skipped, warned
from .services import PlatformView
from .target import Target, same_file

REPORTS_TASKS = ("reports.scheduler",)


@dataclass(frozen=True)
class BeatProcess:
    pid: int
    schedule: str | None
    config: str | None


def _argv(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _config_of(pid: int) -> str | None:
    return (procfs.environ(pid) or {}).get("SUPERSET_CONFIG_PATH")


def beat_processes(target: Target) -> list[BeatProcess]:
    """This host's `celery beat` processes that belong to this stack."""
    schedule_default = beat_schedule_path(target.settings)
    found = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        argv = _argv(int(entry.name))
        if "beat" not in argv or not any(Path(a).name in ("celery", ".celery-wrapped") for a in argv[:3]):
            continue
        schedule = next((a.split("=", 1)[1] for a in argv if a.startswith("--schedule=")), None)
        if schedule is None and "-s" in argv[:-1]:
            schedule = argv[argv.index("-s") + 1]
        config = _config_of(int(entry.name))
        ours = (config is not None and same_file(config, target.options.config_path)) or (
            schedule is not None and (schedule == schedule_default or schedule.startswith(str(target.state_dir) + "/"))
        )
        if ours:
            found.append(BeatProcess(int(entry.name), schedule, config))
    return sorted(found, key=lambda b: b.pid)


def check_beat(target: Target, platform: PlatformView) -> Outcome:  # noqa: PLR0911 - one return per verdict
    settings = target.settings
    role = platform.role("beat")
    processes = beat_processes(target)
    pids = [b.pid for b in processes]
    tasks = target.config.beat_tasks
    details = {"pids": pids, "schedule": tasks, "platform": platform.kind}
    missing_tasks = [t for t in REPORTS_TASKS if t not in tasks.values()]
    host_note = (
        " (this host only: on a multi-host stack make sure no other host runs beat)"
        if platform.kind == "systemd"
        else ""
    )
    if platform.kind == "systemd" and role is not None and not role.present and not pids:
        return skipped(
            "no superset-async-beat unit on this host; beat runs elsewhere or nowhere "
            "(verify on the host with beat.enable)",
            **details,
        )
    if not settings.beat.enabled and not pids:
        return skipped("beat.enabled is false in the settings: no beat on this stack", **details)
    if not pids:
        state = f" ({role.role} {role.state})" if role is not None else ""
        return failed(
            f"no celery beat process of this stack is running{state}: reports are never scheduled",
            "start beat (NixOS: systemctl start superset-async-beat; local: superset-async up)",
            (dx.BEAT_MISSING,),
            **details,
        )
    if len(pids) > 1:
        return failed(
            f"{len(pids)} celery beat processes of this stack run (pids {', '.join(map(str, pids))}): "
            "every scheduled report is sent more than once",
            "stop the extra beat process(es): exactly one beat per stack",
            (dx.BEAT_DUPLICATE,),
            **details,
        )
    if not settings.beat.enabled:
        return warned(
            f"beat runs (pid {pids[0]}) although beat.enabled is false",
            "stop it or enable it",
            (dx.BEAT_DUPLICATE,),
            **details,
        )
    if missing_tasks:
        return failed(
            f"one beat (pid {pids[0]}), but its schedule lacks {', '.join(missing_tasks)}",
            "keep Superset's reports entries in celery.beat_schedule and render again",
            (dx.BEAT_MISSING,),
            **details,
        )
    unit = f", unit {role.state}" if role and platform.kind == "systemd" else ""
    return passed(
        f"exactly one beat (pid {pids[0]}{unit}); schedule: {', '.join(sorted(tasks.values()))}{host_note}", **details
    )
