"""Gather for checks 1 and 5: where the stack runs (the local runner's stack.json, or this host's
systemd units), the web's /health, the web's interpreter, and this stack's beat processes.

On NixOS every role is a unit (nix/modules/superset-async/units.nix); a unit that does not exist on
this host is a role that runs elsewhere (scale-out), never an error by itself. Beat answers no
control command, so it is found as a process: a `celery ... beat` whose SUPERSET_CONFIG_PATH is this
stack's config (same file or same bytes: NixOS runs the store copy of
/etc/superset-async/superset_config.py) or whose schedule file lies in the state directory. Only this
host's processes are visible: on a multi-host stack, make sure no other host also runs beat.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import requests

from .. import procfs
from ..commands import beat_schedule_path
from ..runner.state import read_state, stack_file
from ..sql_lab_lanes import lane_role
from ..web_address import web_url
from .facts import BeatFacts, PlatformView, RoleView, ServiceFacts
from .target import Target, VerifyOptions, same_file

UNITS = {
    "redis": "redis-superset-async.service",
    "web": "superset-async-web.service",
    "worker": "superset-async-worker.service",
    "beat": "superset-async-beat.service",
}


def systemd_units(lanes: Iterable[str] = ()) -> dict[str, str]:
    """role -> its NixOS unit: the fixed roles, and superset-async-worker-NAME for each SQL Lab lane."""
    return {**UNITS, **{lane_role(name): f"superset-async-{lane_role(name)}.service" for name in sorted(lanes)}}


def detect_platform(options: VerifyOptions, state_dir: Path, lanes: Iterable[str] = ()) -> PlatformView:
    wanted = options.platform
    if wanted in ("auto", "local") and stack_file(state_dir).exists():
        return local_view(options, state_dir)
    if wanted in ("auto", "systemd") and shutil.which("systemctl"):
        view = systemd_view(systemd_units(lanes))
        if wanted == "systemd" or any(r.present for r in view.roles.values()):
            return view
    if wanted == "local":
        return PlatformView(
            "local",
            str(stack_file(state_dir)),
            {},
            f"no stack recorded: {stack_file(state_dir)} does not exist",
        )
    if wanted == "systemd":
        return PlatformView("systemd", "systemctl", {}, "systemctl is not available on this host")
    return PlatformView(
        "none",
        "",
        {},
        f"found neither {stack_file(state_dir)} (local runner) nor superset-async-* systemd units",
    )


def local_view(options: VerifyOptions, state_dir: Path) -> PlatformView:
    path = stack_file(state_dir)
    state = read_state(state_dir)
    if state is None:
        return PlatformView("local", str(path), {}, f"{path} disappeared")
    roles = {}
    for role, process in state.processes.items():
        alive = procfs.is_alive(process.pid, process.start_ticks)
        text = (
            "running"
            if alive
            else (f"exited ({process.exit_code})" if process.exit_code is not None else "not running")
        )
        roles[role] = RoleView(role, True, alive, text, (process.pid,))
    problem = None
    if state.config and not same_file(state.config, options.config_path):
        problem = f"the stack runs with {state.config}, verify was given {options.config_path}"
    return PlatformView("local", str(path), roles, problem)


def systemd_view(by_role: Mapping[str, str] = UNITS) -> PlatformView:
    units = list(by_role.values())
    try:
        out = subprocess.run(
            ["systemctl", "show", "--property=Id,LoadState,ActiveState,SubState,MainPID", *units],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as err:
        return PlatformView("systemd", "systemctl", {}, f"systemctl show failed: {err}")
    blocks = [dict(line.split("=", 1) for line in block.splitlines() if "=" in line) for block in out.split("\n\n")]
    by_unit = {b.get("Id", ""): b for b in blocks if b}
    roles = {}
    for role, unit in by_role.items():
        b = by_unit.get(unit, {})
        present = b.get("LoadState", "not-found") not in ("not-found", "")
        active = b.get("ActiveState") == "active"
        pid = int(b.get("MainPID", "0") or 0)
        state = f"{b.get('ActiveState', '?')} ({b.get('SubState', '?')})" if present else "no unit on this host"
        roles[role] = RoleView(role, present, active, state, (pid,) if pid else ())
    return PlatformView("systemd", "systemctl", roles)


def web_python(platform: PlatformView, explicit: Path | None) -> tuple[str, str]:
    """The interpreter of the web's environment and how it was found.

    The web is gunicorn started from a virtualenv's or the Nix environment's bin directory
    (commands.py); the `python3` beside that gunicorn is the web's environment.
    """
    if explicit is not None:
        return str(explicit), "--web-python"
    pid = platform.pid("web")
    if pid is not None:
        for arg in procfs.cmdline(pid)[:3]:
            if arg.endswith("/gunicorn") or arg.endswith("/.gunicorn-wrapped"):
                for name in ("python3", "python"):
                    candidate = Path(arg).parent / name
                    if candidate.exists():
                        return str(candidate), f"beside the web's gunicorn (pid {pid})"
    return sys.executable, "verify's own interpreter (the web's was not found)"


def service_facts(target: Target, platform: PlatformView) -> ServiceFacts:
    """Check 1's facts: the platform, and the web's /health answer."""
    try:
        health = str(requests.get(web_url(target.settings) + "health", timeout=3).status_code)
    except requests.RequestException as err:
        health = f"unreachable ({type(err).__name__})"
    return ServiceFacts(platform, health)


def beat_facts(target: Target, platform: PlatformView) -> BeatFacts:
    """Check 5's facts: this host's `celery beat` processes that belong to this stack."""
    schedule_default = beat_schedule_path(target.settings)
    found = []
    me = os.getpid()
    for pid in procfs.pids():
        argv = procfs.cmdline(pid)
        if pid == me or "beat" not in argv or not any(Path(a).name in ("celery", ".celery-wrapped") for a in argv[:3]):
            continue
        schedule = next((a.split("=", 1)[1] for a in argv if a.startswith("--schedule=")), None)
        if schedule is None and "-s" in argv[:-1]:
            schedule = argv[argv.index("-s") + 1]
        config = (procfs.environ(pid) or {}).get("SUPERSET_CONFIG_PATH")
        ours = (config is not None and same_file(config, target.options.config_path)) or (
            schedule is not None and (schedule == schedule_default or schedule.startswith(str(target.state_dir) + "/"))
        )
        if ours:
            found.append(pid)
    return BeatFacts(platform, tuple(sorted(found)), target.settings.beat.enabled, target.config.beat_tasks())
