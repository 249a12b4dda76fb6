"""`exec ROLE`: replace this process with the role's server (what systemd units and the runner start)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from ..commands import ROLES, Role, lane_command, role_command
from ..errors import UsageError
from ..loading import load_settings
from .settings_cmds import settings_option


@click.command(name="exec")
@click.argument("role", type=click.Choice(ROLES))
@settings_option
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The rendered superset_config.py.",
)
@click.option(
    "--lane",
    metavar="NAME",
    default=None,
    help="With worker: the worker of SQL Lab lane NAME (sql_lab.lanes), consuming only its queue.",
)
@click.option("--print", "print_only", is_flag=True, help="Print argv and environment as JSON instead.")
def exec_role(role: Role, settings_path: Path, config_path: Path, lane: str | None, print_only: bool) -> None:
    """Run the web server, Celery worker or Celery beat with the command line the settings imply."""
    bin_dir = Path(sys.executable).parent  # the programs live beside this interpreter (venv or Nix env)
    settings = load_settings(settings_path)
    if lane is not None and role != "worker":
        raise UsageError(f"--lane names a SQL Lab lane's worker: use it with `exec worker`, not `exec {role}`")
    if lane is not None:
        command = lane_command(lane, settings, config_path, bin_dir)
    else:
        command = role_command(role, settings, config_path, bin_dir)
    if print_only:
        click.echo(json.dumps({"argv": list(command.argv), "env": command.env}, indent=2, sort_keys=True))
        return
    os.execve(command.argv[0], list(command.argv), {**os.environ, **command.env})  # noqa: S606
