"""Check 1 and where the stack runs: the local runner's stack.json, or this host's systemd units.

On NixOS every role is a unit (nix/modules/superset-async/units.nix); a unit that does not exist on
this host is a role that runs elsewhere (scale-out), never an error by itself.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import requests

from ..runner import procfs
from ..runner.readiness import web_url
from ..runner.state import read_state, stack_file
from . import diagnosis as dx
from .model import Outcome, failed, passed, warned
from .target import Target, VerifyOptions, same_file

Kind = Literal["local", "systemd", "none"]
UNITS = {
    "redis": "redis-superset-async.service",
    "web": "superset-async-web.service",
    "worker": "superset-async-worker.service",
    "beat": "superset-async-beat.service",
}
# The failure mode a role that is down points at.
DOWN_MODES = {
    "redis": (dx.BROKER_UNREACHABLE,),
    "web": (dx.WEB_DOWN,),
    "worker": (dx.NO_WORKER,),
    "beat": (dx.BEAT_MISSING,),
}


@dataclass(frozen=True)
class RoleView:
    """One role of the stack as this host sees it."""

    role: str
    present: bool  # part of the stack on this host (recorded in stack.json, or its unit exists)
    running: bool
    state: str
    pids: tuple[int, ...] = ()


@dataclass(frozen=True)
class PlatformView:
    kind: Kind
    source: str
    roles: dict[str, RoleView]
    problem: str | None = None

    def role(self, name: str) -> RoleView | None:
        return self.roles.get(name)

    def pid(self, name: str) -> int | None:
        role = self.roles.get(name)
        return role.pids[0] if role and role.pids and role.running else None


def detect_platform(options: VerifyOptions, state_dir: Path) -> PlatformView:
    wanted = options.platform
    if wanted in ("auto", "local") and stack_file(state_dir).exists():
        return local_view(options, state_dir)
    if wanted in ("auto", "systemd") and shutil.which("systemctl"):
        view = systemd_view()
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


def systemd_view() -> PlatformView:
    units = list(UNITS.values())
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
    for role, unit in UNITS.items():
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
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            argv = []
        for arg in argv[:3]:
            if arg.endswith("/gunicorn") or arg.endswith("/.gunicorn-wrapped"):
                for name in ("python3", "python"):
                    candidate = Path(arg).parent / name
                    if candidate.exists():
                        return str(candidate), f"beside the web's gunicorn (pid {pid})"
    return sys.executable, "verify's own interpreter (the web's was not found)"


def check_services(target: Target, platform: PlatformView) -> Outcome:
    """Check 1: every role of this host's stack is up, and the web answers /health."""
    if platform.problem and not platform.roles:
        return failed(
            platform.problem,
            "start the stack (local: superset-async up --settings S; NixOS: "
            "systemctl start superset-async-web superset-async-worker superset-async-beat) or pass "
            "--platform/--state-dir",
            (dx.SERVICE_DOWN,),
            platform=platform.kind,
        )
    down = [r for r in platform.roles.values() if r.present and not r.running]
    elsewhere = [r.role for r in platform.roles.values() if not r.present]
    health = _health(target)
    details = {
        "platform": platform.kind,
        "source": platform.source,
        "roles": {r.role: r.state for r in platform.roles.values()},
        "web_health": health,
    }
    web = platform.role("web")
    web_here = web is None or web.present or platform.kind == "none"
    parts = [f"{r.role} {r.state}" for r in platform.roles.values() if r.present]
    if elsewhere:
        parts.append(f"not on this host: {', '.join(elsewhere)}")
    if down or (web_here and health != "200"):
        modes = tuple(m for r in down for m in DOWN_MODES.get(r.role, (dx.SERVICE_DOWN,)))
        if web_here and health != "200" and dx.WEB_DOWN not in modes:
            modes += (dx.WEB_DOWN,)
        what = ", ".join(f"{r.role} {r.state}" for r in down) or "all roles running"
        hint = (
            "superset-async status --state-dir " + str(target.state_dir)
            if platform.kind == "local"
            else "systemctl status " + " ".join(UNITS[r.role] for r in down if r.role in UNITS)
        )
        return failed(f"{what}; web /health: {health}", f"see {hint}, then start what is down", modes, **details)
    reason = f"{platform.kind}: " + ", ".join(parts) + f"; web /health {health}"
    if platform.problem:
        return warned(
            reason + f"; but {platform.problem}", "verify the config the stack really runs with", (), **details
        )
    return passed(reason, **details)


def _health(target: Target) -> str:
    try:
        return str(requests.get(web_url(target.settings) + "health", timeout=3).status_code)
    except requests.RequestException as err:
        return f"unreachable ({type(err).__name__})"
